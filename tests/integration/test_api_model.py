"""Model-based testing of the HTTP API: random sequences of actions against a model.

A Hypothesis state machine submits jobs (some held, some due in an hour), starts,
pauses, resumes, kills, restarts and removes them and pauses and resumes their
queues, on a real server. Jobs run on their own while it does, so the model keeps
for each job the set of states it may be in *now*: what the pure state table
(:func:`jobyard.states.transition`) reaches from the last state seen through the
events workers and the scheduler may cause — a claim only while the job's queue is
not paused, a worker's ``paused``/``resumed``/``killed`` only once a user asked for
it. Every answer must be one the model allows for those states (200/202 vs 409
vs 404), and every job is read back after every step: its state among the
possible ones, its ``attempt`` never lower than before, a removed job 404. No
answer is ever a server error.

The run is bounded and derandomized, so it is reproducible and short;
``JOBYARD_MODEL_EXAMPLES`` (and ``JOBYARD_MODEL_STEPS``) search deeper (``make fuzz``).
Ten examples of up to 30 steps send every rule's request (the test checks it), and
in practice meet each action's accepted and refused answers; 25 met no more of
them, at twice the time.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from jobyard.states import Event, IllegalTransition, JobState, initial_state, transition
from tests.harness import FIXTURES, Server, shared_server, wait_for

EXAMPLES = int(os.environ.get("JOBYARD_MODEL_EXAMPLES", "10"))
STEPS = int(os.environ.get("JOBYARD_MODEL_STEPS", "30"))
TYPES = ("nap", "quick", "fail")  # tests/fixtures/model.yaml
QUEUES = ("default", "side")
NAP_SECONDS = 3.0
ID = re.compile(r"/\d+")  # a path's ids, replaced to count requests per route
# A request per rule: a run too short to send each of them fails (``sent`` counts them).
EVERY_RULE = {
    "POST /api/v1/jobs",
    *(f"POST /api/v1/jobs/{{id}}/{action}" for action in ("start", "pause", "resume")),
    "POST /api/v1/jobs/{id}/kill",
    "POST /api/v1/jobs/{id}/restart",
    "DELETE /api/v1/jobs/{id}",
    *(f"POST /api/v1/queues/{name}/{action}" for name in QUEUES for action in ("pause", "resume")),
}
LATER = timedelta(hours=1)  # a run_at this far ahead never comes during a test
# What a worker does once a user asked for it, and only then.
CARRIED_OUT = {Event.PAUSE: Event.PAUSED, Event.RESUME: Event.RESUMED, Event.KILL: Event.KILLED}

server = shared_server(backends=["sqlite"], config=FIXTURES / "model.yaml")


@dataclass
class Known:
    """What the model knows of one job."""

    id: int
    type: str
    queue: str
    later: bool  # submitted with run_at an hour ahead: never promoted here
    states: set[JobState]
    asked: set[Event] = field(default_factory=set)  # intents recorded for its worker
    attempt: int = 0
    removed: bool = False
    restarted: bool = False

    @property
    def aheads(self) -> set[bool]:
        """Whether its run_at may be ahead: a retry's backoff puts it a moment ahead."""
        if self.later:
            return {True}
        return {False, True} if self.type == "fail" else {False}


def outcomes(state: JobState, event: Event, aheads: set[bool]) -> set[JobState]:
    """The states ``event`` may lead to from ``state`` (none when it is illegal)."""
    try:
        return {transition(state, event, run_at_ahead=ahead).state for ahead in aheads}
    except IllegalTransition:
        return set()


def reachable(job: Known, paused_queues: set[str]) -> set[JobState]:
    """Every state the job may have reached by now without a user's action."""
    events = {Event.FAIL, Event.RETRY} if job.type == "fail" else {Event.SUCCEED}
    events |= {CARRIED_OUT[asked] for asked in job.asked}
    if not job.later:
        events.add(Event.PROMOTE)
    if job.queue not in paused_queues:
        events.add(Event.CLAIM)
    seen, todo = set(job.states), list(job.states)
    while todo:
        state = todo.pop()
        for event in events:
            new = outcomes(state, event, job.aheads) - seen
            seen |= new
            todo.extend(new)
    return seen


def answers(job: Known, event: Event) -> dict[int, set[JobState]]:
    """Per allowed status of a user action, the states its answer may show."""
    if job.removed:
        return {404: set()}
    allowed: dict[int, set[JobState]] = {}
    for state in job.states:
        try:
            results = [transition(state, event, run_at_ahead=a) for a in job.aheads]
        except IllegalTransition:
            allowed.setdefault(409, set()).add(state)
            continue
        for outcome in results:
            allowed.setdefault(200 if outcome.immediate else 202, set()).add(outcome.state)
    return allowed


class ApiModel(RuleBasedStateMachine):
    """The API against the model; each rule asserts what is certain whatever ran meanwhile."""

    jobs = Bundle("jobs")

    def __init__(self, server: Server, sent: Counter[str]) -> None:
        super().__init__()
        self.server = server
        self.sent = sent
        self.known: dict[int, Known] = {}
        self.paused_queues: set[str] = set()

    # -- helpers -----------------------------------------------------------
    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.server.client.request(method, path, **kwargs)
        assert response.status_code < 500, f"{method} {path}: {response.text}"
        self.sent[f"{method} {ID.sub('/{id}', path)} {response.status_code}"] += 1
        return response

    def advance(self) -> None:
        """Widen every job's states by what may have happened since they were seen."""
        for job in self.known.values():
            if not job.removed:
                job.states = reachable(job, self.paused_queues)

    def seen(self, job: Known, body: dict[str, Any], allowed: set[JobState]) -> None:
        """Check a job as the server shows it against ``allowed``, then narrow to it."""
        state = JobState(body["state"])
        assert state in allowed, f"job {job.id} ({job.type}) is {state}, not in {allowed}"
        assert body["attempt"] >= job.attempt, f"job {job.id}'s attempt went down"
        job.states, job.attempt = {state}, body["attempt"]

    def add(self, body: dict[str, Any], later: bool, initial: JobState) -> int:
        job = Known(body["id"], body["type"], body["queue"], later, {initial})
        self.known[job.id] = job
        self.seen(job, body, reachable(job, self.paused_queues))
        return job.id

    # -- rules -------------------------------------------------------------
    @rule(
        target=jobs,
        type_=st.sampled_from(TYPES),
        queue=st.sampled_from(QUEUES),
        hold=st.booleans(),
        later=st.booleans(),
    )
    def submit(self, type_: str, queue: str, hold: bool, later: bool) -> int:
        self.advance()
        body: dict[str, Any] = {"type": type_, "queue": queue, "hold": hold}
        if later:
            body["run_at"] = (datetime.now(UTC) + LATER).isoformat()
        response = self.call("POST", "/api/v1/jobs", json=body)
        assert response.status_code == 201, response.text
        return self.add(response.json(), later, initial_state(hold=hold, run_at_ahead=later))

    @rule(job_id=jobs, event=st.sampled_from([Event.START, Event.PAUSE, Event.RESUME]))
    def act(self, job_id: int, event: Event) -> None:
        self.advance()
        self.action(self.known[job_id], event)

    @rule(job_id=jobs)
    def kill(self, job_id: int) -> None:
        """A kill of a live job ends it ``killed`` unless it ended on its own first."""
        self.advance()
        job = self.known[job_id]
        asked_at = datetime.now(UTC)
        response = self.action(job, Event.KILL)
        if response.status_code != 202:
            return
        body = self.wait_terminal(job)
        started = datetime.fromisoformat(response.json()["started_at"])
        if job.type == "nap" and asked_at < started + timedelta(seconds=NAP_SECONDS - 1):
            assert body["state"] == "killed", f"job {job.id} killed while running: {body}"

    def action(self, job: Known, event: Event) -> httpx.Response:
        allowed = answers(job, event)
        response = self.call("POST", f"/api/v1/jobs/{job.id}/{event.value}")
        status = response.status_code
        assert status in allowed, f"{event} on {job.id} {job.states}: {status} {response.text}"
        if status in (200, 202):
            self.seen(job, response.json(), allowed[status])
        if status == 202:
            job.asked.add(event)
        if status == 409:
            assert JobState(response.json()["state"]) in allowed[409], response.text
        return response

    def wait_terminal(self, job: Known) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            self.advance()
            body: dict[str, Any] = self.call("GET", f"/api/v1/jobs/{job.id}").json()
            self.seen(job, body, job.states)
            return body if JobState(body["state"]).terminal else None

        return wait_for(ended, timeout=30, what=f"job {job.id} to end")

    @rule(target=jobs, job_id=jobs)
    def restart(self, job_id: int) -> int:
        self.advance()
        job = self.known[job_id]
        response = self.call("POST", f"/api/v1/jobs/{job.id}/restart")
        if job.removed:
            assert response.status_code == 404, response.text
            return job.id
        allowed = {409}
        if not job.restarted and any(state.terminal for state in job.states):
            allowed.add(201)
        assert response.status_code in allowed, f"{job.states}: {response.text}"
        if response.status_code == 409:
            return job.id
        body = response.json()
        assert body["restarted_from"] == job.id, body
        assert (body["type"], body["queue"]) == (job.type, job.queue), body
        job.restarted = True
        old = self.call("GET", f"/api/v1/jobs/{job.id}").json()
        assert old["restarted_as"] == body["id"], old
        return self.add(body, later=False, initial=JobState.QUEUED)

    @rule(job_id=jobs, force=st.booleans())
    def remove(self, job_id: int, force: bool) -> None:
        self.advance()
        job = self.known[job_id]
        response = self.call("DELETE", f"/api/v1/jobs/{job.id}", params={"force": force})
        if job.removed:
            assert response.status_code == 404, response.text
            return
        allowed = {204} if force or any(s.terminal for s in job.states) else set()
        if not force and not all(s.terminal for s in job.states):
            allowed.add(409)
        assert response.status_code in allowed, f"{job.states}: {response.text}"
        if response.status_code == 204:
            job.removed = True
            assert self.call("GET", f"/api/v1/jobs/{job.id}").status_code == 404

    # Only with jobs about: alone, it would be drawn more than everything else together.
    @precondition(lambda self: bool(self.known))
    @rule(name=st.sampled_from(QUEUES), paused=st.booleans())
    def queue(self, name: str, paused: bool) -> None:
        """Pausing a queue: what was claimed before runs on, nothing queued starts."""
        self.advance()  # claims before the pause commits are possible
        response = self.call("POST", f"/api/v1/queues/{name}/{'pause' if paused else 'resume'}")
        assert response.status_code == 200, response.text
        assert response.json()["paused"] is paused
        if paused:
            self.paused_queues.add(name)
        else:
            self.paused_queues.discard(name)

    # -- invariants --------------------------------------------------------
    @invariant()
    def every_job_is_as_the_model_allows(self) -> None:
        self.advance()
        for job in self.known.values():
            response = self.call("GET", f"/api/v1/jobs/{job.id}")
            if job.removed:
                assert response.status_code == 404, response.text
                continue
            assert response.status_code == 200, response.text
            self.seen(job, response.json(), job.states)

    def teardown(self) -> None:
        """Leave the server as found: nothing pending or live, every queue dispatching."""
        for name in QUEUES:
            self.call("POST", f"/api/v1/queues/{name}/resume")
        for job in self.known.values():
            if not job.removed:
                self.call("DELETE", f"/api/v1/jobs/{job.id}", params={"force": True})


def test_the_api_does_what_the_model_says(server: Server) -> None:
    sent: Counter[str] = Counter()
    run_state_machine_as_test(
        lambda: ApiModel(server, sent),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    routes = {answer.rsplit(" ", 1)[0] for answer in sent}
    assert routes >= EVERY_RULE, f"rules never run: {EVERY_RULE - routes}; sent {sent}"
