"""The job state machine: one pure table, no I/O.

Every change of a job's state — asked by a user or done by a worker or the
scheduler — goes through :func:`transition`, so an illegal move (resume a
succeeded job, pause a killed one, …) is rejected the same way everywhere.

User actions on a job that a worker is running (pause, resume, kill of a
``running`` or ``paused`` job) do not change the state directly: they record an
intent (:class:`Control`) that the owning worker carries out and then reports
with a worker event (``paused``, ``resumed``, ``finished_killed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobState(StrEnum):
    HELD = "held"
    SCHEDULED = "scheduled"
    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"
    UPSTREAM_FAILED = "upstream_failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def live(self) -> bool:
        """A worker owns the job (it has a process)."""
        return self in LIVE


TERMINAL = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED, JobState.UPSTREAM_FAILED}
)
LIVE = frozenset({JobState.RUNNING, JobState.PAUSED})
PENDING = frozenset({JobState.HELD, JobState.SCHEDULED, JobState.WAITING, JobState.QUEUED})


class Control(StrEnum):
    """An intent recorded on a live job for its worker to carry out."""

    PAUSE = "pause"
    RESUME = "resume"
    KILL = "kill"


class Event(StrEnum):
    # asked by users
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    KILL = "kill"
    # done by workers and the scheduler
    PROMOTE = "promote"  # scheduled whose time has come
    CLAIM = "claim"
    PAUSED = "paused"
    RESUMED = "resumed"
    SUCCEED = "succeed"
    FAIL = "fail"
    KILLED = "killed"
    RETRY = "retry"  # failed (or monitor died) with another attempt to come
    LOST = "lost"  # lease expired; RETRY or FAIL follow from attempts left
    HOLD = "hold"  # lost while a user pauses it, with another attempt to come
    REQUEUE = "requeue"  # handed back by a draining worker
    # dependencies
    READY = "ready"  # every dependency is met
    BLOCK = "block"  # a dependency can never be met
    UNBLOCK = "unblock"  # the failed dependency was restarted: wait for the new run


@dataclass(frozen=True)
class Outcome:
    """What an event does to a job: a new state and/or an intent for its worker."""

    state: JobState
    control: Control | None = None

    @property
    def immediate(self) -> bool:
        return self.control is None


class IllegalTransition(Exception):
    """The job's current state forbids the event."""

    def __init__(self, state: JobState, event: Event) -> None:
        super().__init__(f"cannot {event.value} a job that is {state.value}")
        self.state = state
        self.event = event


S = JobState
_RELEASE = "release"  # marker: held → queued, or scheduled when run_at is still ahead

_TABLE: dict[tuple[JobState, Event], JobState | Control | str] = {
    # users
    (S.HELD, Event.START): _RELEASE,
    (S.HELD, Event.RESUME): _RELEASE,
    (S.HELD, Event.KILL): S.KILLED,
    (S.SCHEDULED, Event.PAUSE): S.HELD,
    (S.SCHEDULED, Event.KILL): S.KILLED,
    (S.WAITING, Event.PAUSE): S.HELD,
    (S.WAITING, Event.KILL): S.KILLED,
    (S.QUEUED, Event.PAUSE): S.HELD,
    (S.QUEUED, Event.KILL): S.KILLED,
    (S.RUNNING, Event.PAUSE): Control.PAUSE,
    (S.RUNNING, Event.KILL): Control.KILL,
    (S.PAUSED, Event.RESUME): Control.RESUME,
    (S.PAUSED, Event.KILL): Control.KILL,
    # workers and scheduler
    (S.SCHEDULED, Event.PROMOTE): S.QUEUED,
    (S.QUEUED, Event.CLAIM): S.RUNNING,
    (S.RUNNING, Event.PAUSED): S.PAUSED,
    (S.PAUSED, Event.RESUMED): S.RUNNING,
    (S.RUNNING, Event.SUCCEED): S.SUCCEEDED,
    (S.PAUSED, Event.SUCCEED): S.SUCCEEDED,
    (S.RUNNING, Event.FAIL): S.FAILED,
    (S.PAUSED, Event.FAIL): S.FAILED,
    (S.RUNNING, Event.KILLED): S.KILLED,
    (S.PAUSED, Event.KILLED): S.KILLED,
    (S.RUNNING, Event.RETRY): S.SCHEDULED,
    (S.PAUSED, Event.RETRY): S.SCHEDULED,
    (S.RUNNING, Event.LOST): S.FAILED,
    (S.PAUSED, Event.LOST): S.FAILED,
    (S.RUNNING, Event.HOLD): S.HELD,  # a pause asked: as if carried out
    (S.PAUSED, Event.HOLD): S.HELD,  # paused it stays: held until someone resumes it
    (S.RUNNING, Event.REQUEUE): S.QUEUED,
    (S.PAUSED, Event.REQUEUE): S.HELD,  # paused it stays: as a pending job is, held
    (S.WAITING, Event.READY): _RELEASE,
    (S.WAITING, Event.BLOCK): S.UPSTREAM_FAILED,
    (S.HELD, Event.BLOCK): S.UPSTREAM_FAILED,
    (S.UPSTREAM_FAILED, Event.UNBLOCK): S.WAITING,
}


def transition(
    state: JobState, event: Event, *, run_at_ahead: bool = False, deps_pending: bool = False
) -> Outcome:
    """Return what ``event`` does to a job in ``state``.

    ``run_at_ahead`` tells whether the job's ``run_at`` is still in the future,
    ``deps_pending`` whether some dependency is not met yet; they decide whether a
    released job is ``waiting``, ``scheduled`` or ``queued``.

    Raises :class:`IllegalTransition` when the state forbids the event.
    """
    target = _TABLE.get((state, event))
    if target is None:
        raise IllegalTransition(state, event)
    if isinstance(target, Control):
        return Outcome(state=state, control=target)
    if target == _RELEASE:
        return Outcome(state=_released(run_at_ahead=run_at_ahead, deps_pending=deps_pending))
    return Outcome(state=JobState(target))


def _released(*, run_at_ahead: bool, deps_pending: bool) -> JobState:
    if deps_pending:
        return S.WAITING
    return S.SCHEDULED if run_at_ahead else S.QUEUED


def initial_state(
    *, hold: bool, run_at_ahead: bool, deps_pending: bool = False, deps_failed: bool = False
) -> JobState:
    """The state of a job at submission."""
    if deps_failed:
        return S.UPSTREAM_FAILED
    if hold:
        return S.HELD
    return _released(run_at_ahead=run_at_ahead, deps_pending=deps_pending)


def allowed_events(state: JobState) -> list[Event]:
    """The events the table accepts in ``state``."""
    return [event for (s, event) in _TABLE if s == state]
