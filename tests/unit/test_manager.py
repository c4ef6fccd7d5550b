"""The job manager on the in-memory store: submission, control, restart, removal, listing."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import pytest

from jobyard.dependencies import Dependencies
from jobyard.errors import Conflict, Invalid, NotFound
from jobyard.jobtypes.catalog import Catalog
from jobyard.jobtypes.spec import parse_job_type
from jobyard.manager import JobManager, Submission
from jobyard.models import Condition, Dependency, JobQuery, JobUpdate
from jobyard.states import Control, Event, JobState
from jobyard.store.memory import MemoryStore

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
ECHO = {
    "command": ["echo", "{word}"],
    "params": {"word": {"type": "string", "required": True}},
    "queue": "fast",
    "priority": 3,
    "retries": 2,
}


class Harness:
    """A manager over a memory store, with a settable clock and a count of wake-ups."""

    def __init__(self, queues: Collection[str] | None = None) -> None:
        self.now = NOW
        self.wakes = 0
        self.store = MemoryStore()
        catalog = Catalog(self.store, {"echo": parse_job_type("echo", ECHO)}, queues=queues)
        deps = Dependencies(self.store, clock=lambda: self.now)
        self.manager = JobManager(
            self.store, catalog, deps, wake=self._wake, clock=lambda: self.now
        )

    def _wake(self) -> None:
        self.wakes += 1

    def submit(self, **changes: object) -> int:
        fields: dict[str, object] = {"type": "echo", "args": {"word": "hi"}, **changes}
        job, created = self.manager.submit(Submission(**fields))  # type: ignore[arg-type]
        assert created
        return job.id

    def claim(self) -> int:
        [job] = self.store.queue.claim_jobs("w1", "host", None, 1, self.now, self.now + HOUR).jobs
        return job.id

    def state(self, job_id: int) -> JobState:
        return self.manager.get(job_id).state

    def end(self, job_id: int, state: JobState) -> None:
        """The job ran and ended: as a worker records it, then settles its dependents."""
        values = {"state": state, "finished_at": self.now}
        update = JobUpdate(job_id, frozenset(JobState), values)
        assert self.store.jobs.update_job(update, self.now) is not None
        self.manager.deps.settle([job_id])


@pytest.fixture
def h() -> Harness:
    return Harness()


# -- submission ----------------------------------------------------------------
def test_a_submission_takes_the_types_defaults_and_is_queued(h: Harness) -> None:
    job = h.manager.get(h.submit())
    assert (job.type, job.args, job.queue, job.priority) == ("echo", {"word": "hi"}, "fast", 3)
    assert (job.state, job.max_attempts, job.spec.argv) == (JobState.QUEUED, 3, ["echo", "hi"])
    assert h.wakes == 1


def test_a_submission_chooses_its_initial_state(h: Harness) -> None:
    assert h.state(h.submit(hold=True)) is JobState.HELD
    assert h.state(h.submit(run_at=NOW + HOUR)) is JobState.SCHEDULED
    assert h.state(h.submit(run_at=NOW - HOUR)) is JobState.QUEUED
    upstream = h.submit()
    assert h.state(h.submit(depends_on=(Dependency(upstream),))) is JobState.WAITING


def test_an_idempotency_key_returns_the_first_job(h: Harness) -> None:
    first = h.submit(idempotency_key="k")
    job, created = h.manager.submit(Submission("echo", {"word": "again"}, idempotency_key="k"))
    assert (job.id, job.args, created) == (first, {"word": "hi"}, False)


@pytest.mark.parametrize(
    ("submission", "field", "detail"),
    [
        (Submission("nope"), "type", "the submission is invalid"),
        (Submission("echo", {}), "args.word", "the job arguments are invalid"),
        (Submission("echo", {"word": 5}), "args.word", "the job arguments are invalid"),
        (
            Submission("echo", {"word": "x"}, depends_on=(Dependency(999),)),
            "depends_on.0.job",
            "the submission is invalid",
        ),
    ],
)
def test_invalid_submissions_name_the_field(
    h: Harness, submission: Submission, field: str, detail: str
) -> None:
    with pytest.raises(Invalid) as info:
        h.manager.submit(submission)
    assert [error["field"] for error in info.value.errors] == [field]
    assert str(info.value) == detail
    assert h.manager.find(JobQuery())[1] == 0


def test_a_batch_is_stored_whole_or_not_at_all(h: Harness) -> None:
    batch = [Submission("echo", {"word": "a"}), Submission("echo", {})]
    with pytest.raises(Invalid) as info:
        h.manager.submit_many(batch)
    assert [error["field"] for error in info.value.errors] == ["jobs.1.args.word"]
    assert str(info.value) == "the job arguments are invalid"
    with pytest.raises(Invalid, match=r"^the submission is invalid$"):
        h.manager.submit_many([*batch, Submission("nope")])
    assert h.manager.find(JobQuery())[1] == 0
    assert [created for _, created in h.manager.submit_many(batch[:1] * 3)] == [True] * 3


# -- reading -------------------------------------------------------------------
def test_a_jobs_own_queue_is_one_the_file_declares_if_it_declares_any() -> None:
    h = Harness(queues={"default", "fast", "bulk"})
    with pytest.raises(Invalid, match=r"^the submission is invalid$") as info:
        h.manager.submit(Submission("echo", {}, queue="fsat"))
    assert info.value.errors[-1] == {
        "field": "queue",
        "message": "queue 'fsat' is not declared under queues; did you mean 'fast'?",
    }
    assert [e["field"] for e in info.value.errors] == ["args.word", "queue"]  # all at once
    assert h.manager.get(h.submit(queue="bulk")).queue == "bulk"
    assert h.manager.get(h.submit()).queue == "fast"  # the type's
    assert h.manager.find(JobQuery())[1] == 2
    anywhere = Harness()  # no queues section: any name goes, as for a type's queue
    assert anywhere.manager.get(anywhere.submit(queue="fsat")).queue == "fsat"


def test_a_restart_keeps_its_jobs_queue_even_once_the_file_no_longer_declares_it() -> None:
    h = Harness()
    old = h.submit(queue="retired")
    h.end(old, JobState.FAILED)
    declared = {"echo": parse_job_type("echo", ECHO)}
    h.manager.catalog = Catalog(h.store, declared, queues={"default", "fast"})
    assert h.manager.restart(old).queue == "retired"  # the user chose no queue this time


def test_a_types_own_queue_may_be_named_though_the_file_no_longer_declares_it() -> None:
    """A type stored before the file declared queues keeps its queue: naming it in a
    submission (or repeating an idempotency key that did) is no error."""
    h = Harness()
    declared = {"echo": parse_job_type("echo", ECHO | {"queue": "retired"})}
    h.manager.catalog = Catalog(h.store, declared, queues={"default", "fast"})
    assert h.manager.get(h.submit(queue="retired")).queue == "retired"
    with pytest.raises(Invalid) as info:
        h.submit(queue="retird")
    assert [e["field"] for e in info.value.errors] == ["queue"]


def test_listing_and_logs(h: Harness) -> None:
    ids = [h.submit(args={"word": w}) for w in ("a", "b", "c")]
    page, total = h.manager.find(JobQuery(per_page=2, sort=["id"]))
    assert ([job.id for job in page], total) == (ids[:2], 3)
    assert h.manager.logs(ids[0], 0, 10) == []
    with pytest.raises(NotFound):
        h.manager.get(12345)
    with pytest.raises(NotFound):
        h.manager.logs(12345, 0, 10)


# -- control -------------------------------------------------------------------
def test_pending_jobs_change_state_at_once(h: Harness) -> None:
    job_id = h.submit()
    assert h.manager.act(job_id, Event.PAUSE).state is JobState.HELD
    assert h.manager.act(job_id, Event.START).state is JobState.QUEUED
    killed = h.manager.act(job_id, Event.KILL)
    assert (killed.state, killed.reason, killed.finished_at) == (JobState.KILLED, "killed", NOW)
    states = [e.record.marshal()["state"] for e in h.store.jobs.job_events(job_id)]
    assert states == ["queued", "held", "queued", "killed"]


def test_a_job_killed_while_it_waits_to_retry_says_it_was_killed(h: Harness) -> None:
    # It kept the failed attempt's "exit code 1", as if that were why it ended.
    job_id = h.submit()
    h.claim()
    values = {"state": JobState.SCHEDULED, "run_at": NOW + HOUR, "exit_code": 1}
    update = JobUpdate(job_id, frozenset(JobState), values | {"error": "exit code 1"})
    assert h.store.jobs.update_job(update, NOW) is not None
    killed = h.manager.act(job_id, Event.KILL)
    assert (killed.state, killed.reason) == (JobState.KILLED, "killed")
    assert (killed.error, killed.exit_code) == ("killed by a user", None)


def test_a_live_job_gets_an_intent_for_its_worker(h: Harness) -> None:
    job_id = h.submit()
    h.claim()
    job = h.manager.act(job_id, Event.PAUSE)
    assert (job.state, job.control) == (JobState.RUNNING, Control.PAUSE)
    assert h.store.queue.live_controls("w1") == {job_id: Control.PAUSE}


@pytest.mark.parametrize(
    ("event", "state"),
    [(Event.RESUME, JobState.QUEUED), (Event.START, JobState.QUEUED), (Event.PAUSE, "ended")],
)
def test_a_forbidden_action_is_a_conflict_naming_the_state(
    h: Harness, event: Event, state: JobState | str
) -> None:
    job_id = h.submit()
    if state == "ended":
        h.manager.act(job_id, Event.KILL)
        state = JobState.KILLED
    with pytest.raises(Conflict) as info:
        h.manager.act(job_id, event)
    assert info.value.extra == {"state": state.value}  # type: ignore[union-attr]


def test_starting_a_held_job_respects_its_dependencies(h: Harness) -> None:
    upstream = h.submit()
    waiting = h.submit(hold=True, depends_on=(Dependency(upstream),))
    assert h.manager.act(waiting, Event.START).state is JobState.WAITING
    failed = h.submit()
    h.end(failed, JobState.FAILED)
    blocked = h.submit(hold=True, depends_on=(Dependency(failed),))
    assert h.state(blocked) is JobState.UPSTREAM_FAILED  # known impossible at submission
    held = h.submit(hold=True, depends_on=(Dependency(upstream),))
    h.end(upstream, JobState.FAILED)
    assert h.manager.act(held, Event.START).state is JobState.UPSTREAM_FAILED


# -- restart and removal -------------------------------------------------------
def test_restart_makes_a_new_job_from_a_finished_one(h: Harness) -> None:
    old = h.submit(name="nightly")
    with pytest.raises(Conflict, match="kill it first"):
        h.manager.restart(old)
    h.end(old, JobState.FAILED)
    new = h.manager.restart(old, {"word": "again"})
    assert (new.args, new.name, new.restarted_from, new.state) == (
        {"word": "again"}, "nightly", old, JobState.QUEUED,
    )  # fmt: skip
    assert h.manager.get(old).restarted_as == new.id


def test_restart_waits_for_the_newest_run_of_an_upstream(h: Harness) -> None:
    upstream = h.submit()
    h.end(upstream, JobState.FAILED)
    waiting = h.submit(depends_on=(Dependency(upstream, Condition.FINISHED),))
    h.claim()
    h.end(waiting, JobState.SUCCEEDED)
    rerun = h.manager.restart(upstream)
    again = h.manager.restart(waiting)
    assert [d.upstream for d in h.manager.dependencies(again.id)] == [rerun.id]
    assert again.state is JobState.WAITING


def test_remove_deletes_an_ended_job_and_blocks_its_dependents(h: Harness) -> None:
    upstream = h.submit()
    waiting = h.submit(depends_on=(Dependency(upstream),))
    with pytest.raises(Conflict, match="use force"):
        h.manager.remove(upstream)
    h.manager.remove(upstream, force=True)
    with pytest.raises(NotFound):
        h.manager.get(upstream)
    assert h.state(waiting) is JobState.UPSTREAM_FAILED
    assert h.manager.dependencies(waiting)[0].state is None
    with pytest.raises(NotFound):
        h.manager.remove(upstream)


def test_a_kill_asked_stands_against_a_later_pause_or_resume(h: Harness) -> None:
    running, paused = h.submit(), h.submit()
    h.claim()
    h.claim()
    pause = JobUpdate(paused, frozenset({JobState.RUNNING}), {"state": JobState.PAUSED})
    assert h.store.jobs.update_job(pause, NOW) is not None  # as its worker stores a pause
    for job_id, event, state in (
        (running, Event.PAUSE, "running"),
        (paused, Event.RESUME, "paused"),
    ):
        assert h.manager.act(job_id, Event.KILL).control is Control.KILL
        with pytest.raises(Conflict, match="being killed") as info:
            h.manager.act(job_id, event)
        assert info.value.extra == {"state": state}
        assert h.manager.act(job_id, Event.KILL).control is Control.KILL  # again: still fine


def test_a_pause_carried_out_keeps_a_kill_asked_meanwhile(h: Harness) -> None:
    job_id = h.submit()
    h.claim()
    h.manager.act(job_id, Event.PAUSE)
    h.manager.act(job_id, Event.KILL)  # before the worker stored its pause
    paused = JobUpdate(job_id, frozenset({JobState.RUNNING}), {"state": JobState.PAUSED})
    stored = h.store.jobs.update_job(dataclasses.replace(paused, clears=Control.PAUSE), NOW)
    assert stored is not None
    assert (stored.state, stored.control) == (JobState.PAUSED, Control.KILL)


def test_removing_a_live_job_leaves_its_worker_nothing_to_run(h: Harness) -> None:
    job_id = h.submit()
    h.claim()
    h.manager.remove(job_id, force=True)
    assert h.store.jobs.get_job(job_id) is None
    assert h.store.queue.live_controls("w1") == {}  # the worker abandons it at its next look
    assert h.store.queue.renew_leases("w1", NOW, NOW + HOUR) == []  # or at its heartbeat


@pytest.mark.parametrize("live", [False, True], ids=["pending", "running"])
@pytest.mark.parametrize("condition", list(Condition))
def test_a_forced_removal_blocks_dependents_whatever_they_wait_for(
    h: Harness, condition: Condition, live: bool
) -> None:
    """A removal killed the job first: a pending job ended killed at once, which met the
    ``failed`` and ``finished`` conditions, and its dependents ran."""
    upstream = h.submit()
    if live:
        h.claim()
    waiting = h.submit(depends_on=(Dependency(upstream, condition),))
    h.manager.remove(upstream, force=True)
    blocked = h.manager.get(waiting)
    assert (blocked.state, blocked.error) == (
        JobState.UPSTREAM_FAILED,
        f"dependency {upstream} ended removed",
    )
