"""Events made up by polling, for servers that cannot stream them.

They have the shape of the streamed ones (``state``, ``progress``, ``log``,
then ``close``) but no ``id``, and a state the job passed through between two
polls is not seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from jobyard.client.models import TERMINAL_STATES, Event, JobInfo, LogLine, LogPage

JobGetter = Callable[[], JobInfo]
LogGetter = Callable[[int], LogPage]


def poll_events(
    get_job: JobGetter,
    get_logs: LogGetter | None,
    *,
    interval: float = 0.5,
    deadline: float | None = None,
    after: int = 0,
) -> Iterator[Event]:
    """State changes, progress and (with ``get_logs``) log lines, until the job ends."""
    state: str | None = None
    progress: tuple[float | None, str | None] = (None, None)
    while True:
        job = get_job()
        if job.state != state and not job.terminal:
            yield _state(job)
        if (job.progress.fraction, job.progress.message) != progress:
            progress = (job.progress.fraction, job.progress.message)
            yield _progress(job)
        if get_logs is not None:
            for line in drain_logs(get_logs, after):
                after = line.seq
                yield _log(job.id, line)
        if job.terminal:
            yield _state(job)
            yield Event(id=None, kind="close", data={"job_id": job.id, "state": job.state})
            return
        state = job.state
        _sleep(interval, deadline)


def poll_logs(
    get_logs: LogGetter, *, after: int = 0, interval: float = 0.5, deadline: float | None = None
) -> Iterator[LogLine]:
    """Log lines after ``after`` as they come, until the job has ended and all are read."""
    while True:
        page = get_logs(after)
        yield from page.items
        after = page.next_after
        if page.state in TERMINAL_STATES:
            # lines are all written before the job ends: read what came meanwhile
            yield from drain_logs(get_logs, after)
            return
        if not page.items:
            _sleep(interval, deadline)


def drain_logs(get_logs: LogGetter, after: int) -> Iterator[LogLine]:
    """Every log line after ``after``, page by page."""
    while True:
        page = get_logs(after)
        if not page.items:
            return
        yield from page.items
        after = page.next_after


def _sleep(interval: float, deadline: float | None) -> None:
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the job did not end before the deadline")
        interval = min(interval, remaining)
    time.sleep(interval)


def _at(when: datetime | None) -> str:
    return (when or datetime.now(UTC)).isoformat()


def _state(job: JobInfo) -> Event:
    data = {
        "job_id": job.id,
        "at": _at(job.updated_at),
        "state": job.state,
        "reason": job.reason,
        "exit_code": job.exit_code,
        "attempt": job.attempt,
    }
    return Event(id=None, kind="state", data=data)


def _progress(job: JobInfo) -> Event:
    data = {
        "job_id": job.id,
        "at": _at(job.updated_at),
        "fraction": job.progress.fraction,
        "message": job.progress.message,
    }
    return Event(id=None, kind="progress", data=data)


def _log(job_id: int, line: LogLine) -> Event:
    data = {"job_id": job_id, "at": _at(line.at), "seq": line.seq, "stream": line.stream}
    return Event(id=None, kind="log", data=data | {"line": line.line})
