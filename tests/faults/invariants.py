"""What must hold after any fault: checked the same way after every test of the suite.

- every submitted job reaches exactly one terminal state (:func:`one_end_each`);
- none succeeded twice (:func:`one_end_each`), and attempts and history agree
  (:func:`attempts_agree`): each claim is the next attempt, the job's row names
  the last one;
- no process of a job outlives its job (:func:`no_process_outlives`), found by
  the ``JOBYARD_JOB_TOKEN`` of each of its attempts, whichever worker ran it;
- a stream subscriber sees every event id in order, none twice (:func:`in_order`);
- no log line the store acknowledged is lost (:func:`lines_kept`).

:func:`check_jobs` runs the first three over a set of jobs, once they have ended.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Sequence

from jobyard.events.records import LogWritten
from jobyard.models import Job
from jobyard.runner.procs import TOKEN_VAR
from jobyard.states import TERMINAL, JobState
from jobyard.store import Store
from tests.cluster import StateEvent, state_events
from tests.harness import wait_for

ORPHAN_TIMEOUT = 30.0  # an ended job's processes may take a moment to be reaped


def ended(store: Store, job_ids: Collection[int], timeout: float = 120) -> dict[int, Job]:
    """Wait until every job is terminal; the jobs."""

    def probe() -> dict[int, Job] | None:
        found = {job.id: job for job in store.jobs.jobs_by_id(list(job_ids))}
        done = all(job.state.terminal for job in found.values()) and len(found) == len(job_ids)
        return found if done else None

    return wait_for(probe, timeout, interval=0.2, what=f"jobs {sorted(job_ids)} to end")


def check_jobs(store: Store, job_ids: Collection[int]) -> dict[int, list[StateEvent]]:
    """Every invariant of ended jobs; their state events, for more checks by the test."""
    jobs = ended(store, job_ids)
    history = state_events(store, job_ids)
    for job_id, job in jobs.items():
        one_end_each(job, history[job_id])
        attempts_agree(job, history[job_id])
    no_process_outlives(history)
    return history


def one_end_each(job: Job, events: Sequence[StateEvent]) -> None:
    """Exactly one terminal state event, the job's state; ``succeeded`` at most once."""
    ends = [event.state for event in events if JobState(event.state) in TERMINAL]
    assert ends == [job.state.value], f"job {job.id} ended {ends}, its row says {job.state}"
    successes = [event for event in events if event.state == JobState.SUCCEEDED.value]
    assert len(successes) <= 1, f"job {job.id} succeeded {len(successes)} times"


def attempts_agree(job: Job, events: Sequence[StateEvent]) -> None:
    """Claims number the attempts 1, 2, …; the row's attempt is the last claim's."""
    claims = [event.data["attempt"] for event in events if event.claim]
    assert claims == list(range(1, len(claims) + 1)), f"job {job.id} claims {claims}"
    assert job.attempt == len(claims), f"job {job.id}: attempt {job.attempt}, claims {claims}"
    last = events[-1].data.get("attempt") if events else None
    assert last in (None, job.attempt), f"job {job.id} ended at attempt {last} of {job.attempt}"


def tokens(history: dict[int, list[StateEvent]]) -> set[str]:
    """The ``JOBYARD_JOB_TOKEN`` of every attempt of these jobs (``worker:job:attempt``)."""
    return {
        f"{event.data['worker']}:{job_id}:{event.data['attempt']}"
        for job_id, events in history.items()
        for event in events
        if event.claim
    }


def holders(wanted: Iterable[str]) -> dict[int, str]:
    """Live processes (not zombies) whose environment carries one of these tokens."""
    needles = {f"{TOKEN_VAR}={token}".encode(): token for token in wanted}
    found: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or _zombie(name):
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as file:
                variables = file.read().split(b"\0")
        except OSError:
            continue  # gone, or not ours to read
        for variable in variables:
            if variable in needles:
                found[int(name)] = needles[variable]
    return found


def _zombie(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def no_process_outlives(history: dict[int, list[StateEvent]]) -> None:
    """No process of any attempt of these (ended) jobs is left, after a short grace."""
    wanted = tokens(history)
    left: dict[int, str] = {}

    def probe() -> bool:
        left.clear()
        left.update(holders(wanted))
        return not left

    try:
        wait_for(probe, ORPHAN_TIMEOUT, interval=0.2, what="the jobs' processes to end")
    except AssertionError:
        raise AssertionError(f"processes outlive their jobs: {left}") from None


def in_order(event_ids: Sequence[int | None]) -> None:
    """A subscriber's event ids: each present, rising, none twice."""
    assert None not in event_ids, "an event without id"
    assert list(event_ids) == sorted(set(event_ids)), f"ids out of order or repeated: {event_ids}"


def lines_kept(store: Store, job_id: int, acknowledged: Sequence[LogWritten]) -> None:
    """Each acknowledged line is stored as it was; the stored ones are numbered 1, 2, … n."""
    stored = store.jobs.log_lines(job_id, limit=1_000_000)
    assert [line.seq for line in stored] == list(range(1, len(stored) + 1)), "a gap or a repeat"
    by_seq = {line.seq: (line.stream, line.line) for line in stored}
    lost = [line for line in acknowledged if by_seq.get(line.seq) != (line.stream, line.line)]
    assert not lost, f"acknowledged lines lost: {lost[:5]}"
