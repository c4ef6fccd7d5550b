"""Every operation of the API, written once as a flow (see :mod:`.flow`).

A flow builds its requests, asks for them by yielding :class:`Call` (or a
stream's :class:`Next` event, or a :class:`Sleep`), and turns the answers into
the typed results of :mod:`.models`. The sync :class:`~jobyard.client.Client`
and the :class:`~jobyard.client.AsyncClient` run these same flows; their
methods only pass the arguments on.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from jobyard.client.errors import ApiError, ServerUnreachable
from jobyard.client.events import Event, parse_event
from jobyard.client.flow import Call, Emit, Flow, Next, Sleep, Steps, StreamSpec
from jobyard.client.models import (
    ActionResult,
    AuditPage,
    CreatedToken,
    Dependency,
    JobInfo,
    JobPage,
    JobTypeInfo,
    LogLine,
    LogPage,
    Me,
    NotificationPage,
    TokenInfo,
    UserInfo,
    WorkerStatus,
)
from jobyard.client.nodes import NodeHistory, RunNodes
from jobyard.client.records import QueueInfo, Sample, ScheduleInfo
from jobyard.client.stream import (
    EventStream,
    Patience,
    StreamRequest,
    StreamReset,
    StreamUnavailable,
)
from jobyard.client.values import TERMINAL_STATES, local_time

T = TypeVar("T")

JOBS = "/api/v1/jobs"
TYPES = "/api/v1/job-types"
WORKERS = "/api/v1/workers"
QUEUES = "/api/v1/queues"
SCHEDULES = "/api/v1/schedules"
NOTIFICATIONS = "/api/v1/notifications"
TOKENS = "/api/v1/tokens"
USERS = "/api/v1/users"
WORKFLOWS = "/api/v1/workflows"
RUNS = "/api/v1/workflow-runs"
ACTIONS_LIMIT = 500  # ids a request of act_many
Names = str | Iterable[str] | None
Upstream = int | Dependency | Mapping[str, Any]


def segment(name: str | int) -> str:
    """``name`` as one segment of a path: a ``/``, ``?`` or ``#`` in it, or a name that
    is ``.`` or ``..`` (which the URL would resolve), cannot reach another resource."""
    text = quote(str(name), safe="")
    return text.replace(".", "%2E") if text in (".", "..") else text


def call(
    method: str, path: str, params: Mapping[str, Any] | None = None, json: Any = None
) -> Flow[Any]:
    """One request; its JSON answer."""
    return (yield Call(method, path, dict(params or {}), json))


def delete(collection: str, name: str) -> Flow[None]:
    """Delete the named member of a collection (a stored job type, schedule, user)."""
    yield from call("DELETE", f"{collection}/{segment(name)}")


def raw(
    method: str, path: str, params: Mapping[str, Any] | None = None, json: Any = None
) -> Flow[dict[str, Any]]:
    """One request whose answer, a JSON object, is the result as it is (no model yet)."""
    answer: dict[str, Any] = yield from call(method, path, params, json)
    return answer


# -- jobs ----------------------------------------------------------------------------------
def submit(body: dict[str, Any]) -> Flow[JobInfo]:
    return JobInfo.from_dict((yield from call("POST", JOBS, json=body)))


def submit_once(body: dict[str, Any]) -> Flow[tuple[JobInfo, bool]]:
    """The job, and whether it is new: the server answers 200, not 201, with the first
    job of an idempotency key it has seen."""
    status, answer = yield Call("POST", JOBS, json=body, status=True)
    return JobInfo.from_dict(answer), status == 201


def submit_many(jobs: Iterable[Mapping[str, Any]]) -> Flow[list[JobInfo]]:
    bodies = [submission(**job) for job in jobs]
    answer = yield from call("POST", f"{JOBS}/batch", json={"jobs": bodies})
    return [JobInfo.from_dict(item) for item in answer["items"]]


def jobs(
    page: int = 1,
    per_page: int = 50,
    sort: str | None = None,
    search: str | None = None,
    state: Names = None,
    type: Names = None,
    queue: Names = None,
    worker: Names = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: str | None = None,
) -> Flow[JobPage]:
    found = job_listing(
        page, per_page, sort, search, state, type, queue, worker, since, until, after
    )
    return JobPage.from_dict((yield from found))


def job_listing(
    page: int,
    per_page: int,
    sort: str | None,
    search: str | None,
    state: Names,
    type: Names,
    queue: Names,
    worker: Names,
    since: datetime | None,
    until: datetime | None,
    after: str | None,
) -> Flow[dict[str, Any]]:
    """A page of ``GET /api/v1/jobs`` as the server answered it."""
    params = {"page": page, "per_page": per_page, "sort": sort, "search": search, "after": after}
    params |= {"state": csv(state), "type": csv(type), "queue": csv(queue)}
    params |= {"worker": csv(worker), "since": iso(since, "since"), "until": iso(until, "until")}
    answer: dict[str, Any] = yield from call("GET", JOBS, params)
    return answer


def iter_jobs(
    sort: str | None,
    search: str | None,
    state: Names,
    type: Names,
    queue: Names,
    per_page: int,
    worker: Names,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Steps:
    """Every matching job, page after page, each once: every page starts after the last
    job listed (its ``next``), not at an offset that removals and insertions shift."""
    seen: set[int] = set()  # a job whose sorted value changed may come round again
    after: str | None = None
    number = 1  # an older server pages by numbers only
    while True:
        answer = yield from job_listing(
            number, per_page, sort, search, state, type, queue, worker, since, until, after
        )
        page = JobPage.from_dict(answer)
        for job in page.items:
            if job.id not in seen:
                seen.add(job.id)
                yield Emit(job)
        if "next" not in answer:
            if number >= page.pages or not page.items:
                return
            number += 1
        elif page.next is None:
            return
        after = page.next


def job(job_id: int) -> Flow[JobInfo]:
    return JobInfo.from_dict((yield from call("GET", f"{JOBS}/{job_id}")))


def act(job_id: int, action: str) -> Flow[JobInfo]:
    return JobInfo.from_dict((yield from call("POST", f"{JOBS}/{job_id}/{action}")))


def restart(job_id: int, args: Mapping[str, Any] | None) -> Flow[JobInfo]:
    body = {"args": dict(args)} if args is not None else None
    return JobInfo.from_dict((yield from call("POST", f"{JOBS}/{job_id}/restart", json=body)))


def remove(job_id: int, force: bool) -> Flow[None]:
    yield from call("DELETE", f"{JOBS}/{job_id}", {"force": "true" if force else None})


def act_many(action: str, ids: Iterable[int], force: bool) -> Flow[list[ActionResult]]:
    wanted = list(dict.fromkeys(ids))
    results: list[ActionResult] = []
    for start in range(0, len(wanted), ACTIONS_LIMIT):
        body = {"action": action, "ids": wanted[start : start + ACTIONS_LIMIT], "force": force}
        answer = yield from call("POST", f"{JOBS}/actions", json=body)
        results += [ActionResult.from_dict(item) for item in answer["results"]]
    return results


# -- logs ----------------------------------------------------------------------------------
def logs(job_id: int, after: int = 0, limit: int = 1000) -> Flow[LogPage]:
    params = {"after": after, "limit": limit}
    return LogPage.from_dict((yield from call("GET", f"{JOBS}/{job_id}/logs", params)))


def drain_logs(job_id: int, after: int) -> Steps:
    """Every log line stored now after ``after``, page by page."""
    while True:
        page = yield from logs(job_id, after)
        if not page.items:
            return
        for line in page.items:
            yield Emit(line)
        after = page.next_after


def follow_logs(job_id: int, after: int, interval: float) -> Steps:
    """Log lines as they are written, until the job has ended (polls if it cannot stream)."""
    last = after

    def request(_: EventStream) -> StreamRequest:
        return StreamRequest("GET", f"{JOBS}/{job_id}/logs", {"follow": "true", "after": last})

    stream = StreamSpec(request)
    try:
        while (event := (yield Next(stream))) is not None:
            if event.kind == "log" and int(event.data.get("seq", 0)) > last:
                line = LogLine.from_dict(event.data)
                last = line.seq
                yield Emit(line)
    except StreamUnavailable:
        yield from poll_logs(job_id, last, interval)


def poll_logs(job_id: int, after: int, interval: float) -> Steps:
    """Log lines after ``after`` as they come, until the job has ended and all are read."""
    while True:
        page = yield from logs(job_id, after)
        for line in page.items:
            yield Emit(line)
        after = page.next_after
        if page.state in TERMINAL_STATES:
            # lines are all written before the job ends: read what came meanwhile
            yield from drain_logs(job_id, after)
            return
        if not page.items:
            yield Sleep(interval)


# -- events --------------------------------------------------------------------------------
def stream_events(spec: StreamSpec) -> Steps:
    """Every event of one stream, as it comes."""
    while (event := (yield Next(spec))) is not None:
        yield Emit(event)


def job_events(
    job_id: int,
    last_event_id: int | None,
    interval: float,
    deadline: float | None = None,
    with_logs: bool = True,
) -> Steps:
    """A job's events until ``close``; made up by polling where the server cannot stream."""
    request = StreamRequest("GET", f"{JOBS}/{job_id}/events")
    spec = StreamSpec(lambda _: request, last_event_id, deadline=deadline)
    try:
        yield from stream_events(spec)
    except StreamUnavailable:
        yield from job(job_id)  # NotFound if there is no such job
        yield from poll_events(job_id, interval, deadline, with_logs)


def all_events(
    type: Names, queue: Names, job: int | None, last_event_id: int | None, from_now: bool
) -> Steps:
    params = {"type": csv(type), "queue": csv(queue), "job": job}
    params |= {"from": "now" if from_now else None}
    request = StreamRequest("GET", "/api/v1/events", drop_none(params))
    yield from stream_events(StreamSpec(lambda _: request, last_event_id, until_close=False))


def submit_and_follow(
    type: str, args: Mapping[str, Any] | None, options: dict[str, Any], interval: float
) -> Steps:
    """Submit a job and stream its events until ``close`` (see ``Client.submit_and_follow``)."""
    options.setdefault("idempotency_key", uuid.uuid4().hex)
    body = submission(type, args, **options)

    def request(stream: EventStream) -> StreamRequest:
        if stream.job_id is None:
            return StreamRequest("POST", JOBS, json=body)
        return StreamRequest("GET", f"{JOBS}/{stream.job_id}/events")

    try:
        yield from stream_events(StreamSpec(request))
    except StreamUnavailable as exc:
        if exc.status >= 300 or not isinstance(exc.body, dict):
            raise
        # it answered the new job without streaming: follow the job's own stream
        yield from job_events(JobInfo.from_dict(exc.body).id, None, interval)


def wait(job_id: int, timeout: float | None, interval: float) -> Flow[JobInfo]:
    """The job once it has ended; :class:`TimeoutError` after ``timeout`` seconds."""
    first = yield from job(job_id)
    if first.terminal:
        return first
    deadline = None if timeout is None else time.monotonic() + timeout
    events = job_events(job_id, None, interval, deadline, with_logs=False)
    yield from gather(events, until=lambda event: event.kind == "close")
    return (yield from reread(lambda: job(job_id), deadline))


# The waits before each new try of a read that follows a stream's close (about 12 s in
# all, as a stream's reconnections): a server that is stopping closes its streams first,
# and the read may find it gone for the seconds its restart takes.
REREAD_WAITS = (0.5, 1.0, 2.0, 4.0, 5.0)
BUSY_REREAD_WAIT = 1.0  # between tries while the server answers 503 (its Retry-After)


def reread(read: Callable[[], Flow[T]], deadline: float | None = None) -> Flow[T]:
    """``read()``, tried again while the server cannot be reached, or answers that its
    database is away (503, 429: for up to :class:`Patience`), as a stream is (not
    past ``deadline``, a :func:`time.monotonic` time)."""
    waits = iter(REREAD_WAITS)
    busy = Patience()
    while True:
        try:
            return (yield from read())
        except ServerUnreachable:
            wait_s = next(waits, None)
            if wait_s is None:
                raise
        except ApiError as exc:
            if exc.status not in (429, 503) or busy.spent():
                raise
            wait_s = BUSY_REREAD_WAIT
        if deadline is not None and time.monotonic() + wait_s >= deadline:
            return (yield from read())  # a last try: its error is the answer
        yield Sleep(wait_s)


def poll_events(job_id: int, interval: float, deadline: float | None, with_logs: bool) -> Steps:
    """State changes, progress and (``with_logs``) log lines, polled until the job ends.

    They have the shape of the streamed ones but no ``id``, and a state the job
    passed through between two polls is not seen.
    """
    state: str | None = None
    progress: tuple[float | None, str | None] = (None, None)
    after = 0
    while True:
        current = yield from job(job_id)
        if current.state != state and not current.terminal:
            yield Emit(_state(current))
        if (current.progress.fraction, current.progress.message) != progress:
            progress = (current.progress.fraction, current.progress.message)
            yield Emit(_progress(current))
        if with_logs:
            lines: list[LogLine] = yield from gather(drain_logs(job_id, after))
            for line in lines:
                after = line.seq
                yield Emit(_log(job_id, line))
        if current.terminal:
            yield Emit(_state(current))
            yield Emit(parse_event(None, "close", {"job_id": job_id, "state": current.state}))
            return
        state = current.state
        yield Sleep(_interval(interval, deadline))


def gather(
    steps: Steps, until: Callable[[Any], bool] | None = None, keep: int | None = None
) -> Flow[list[Any]]:
    """What ``steps`` emits, as a list, up to the first item ``until`` accepts (only the
    last ``keep`` items, when given).

    Its other effects pass through this flow to the driver, and their answers
    (or errors) back into ``steps``.
    """
    items: deque[Any] = deque(maxlen=keep)
    try:
        effect = next(steps, None)
        while effect is not None:
            if isinstance(effect, Emit):
                items.append(effect.value)
                if until is not None and until(effect.value):
                    break
                effect = _resume(steps, None, None)
                continue
            try:
                reply = yield effect
            except Exception as exc:
                effect = _resume(steps, None, exc)
            else:
                effect = _resume(steps, reply, None)
    finally:
        steps.close()
    return list(items)


def _resume(steps: Steps, reply: Any, error: Exception | None) -> Any:
    """The next effect of ``steps`` (None once it ended)."""
    try:
        return steps.throw(error) if error is not None else steps.send(reply)
    except StopIteration:
        return None


def _interval(interval: float, deadline: float | None, what: str = "the job") -> float:
    if deadline is None:
        return interval
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"{what} did not end before the deadline")
    return min(interval, remaining)


def _at(when: datetime | None) -> str:
    return (when or datetime.now(UTC)).isoformat()


def _state(job: JobInfo) -> Event:
    data = {"job_id": job.id, "at": _at(job.updated_at), "state": job.state}
    data |= {"reason": job.reason, "exit_code": job.exit_code, "attempt": job.attempt}
    return parse_event(None, "state", data)


def _progress(job: JobInfo) -> Event:
    data = {"job_id": job.id, "at": _at(job.updated_at)}
    data |= {"fraction": job.progress.fraction, "message": job.progress.message}
    return parse_event(None, "progress", data)


def _log(job_id: int, line: LogLine) -> Event:
    data = {"job_id": job_id, "at": _at(line.at), "seq": line.seq, "stream": line.stream}
    return parse_event(None, "log", data | {"line": line.line})


# -- job types, workflows, workers, notifications --------------------------------------------
def job_types() -> Flow[list[JobTypeInfo]]:
    answer = yield from call("GET", TYPES)
    return [JobTypeInfo.from_dict(item) for item in answer["items"]]


def job_type(
    method: str, name: str, definition: Mapping[str, Any] | None = None
) -> Flow[JobTypeInfo]:
    path = TYPES if method == "POST" else f"{TYPES}/{segment(name)}"
    body = None if definition is None else dict(definition)
    return JobTypeInfo.from_dict((yield from call(method, path, json=body)))


def items(path: str) -> Flow[list[dict[str, Any]]]:
    found: list[dict[str, Any]] = (yield from call("GET", path))["items"]
    return found


def health() -> Flow[dict[str, Any]]:
    return (yield from raw("GET", "/healthz"))


def ready() -> Flow[dict[str, Any]]:
    """``/readyz``: ``{"status": "ready", …}``, or ``{"status": "unready", "detail": …}``
    while the server's database does not answer (its 503)."""
    try:
        return (yield from raw("GET", "/readyz"))
    except ApiError as exc:
        if exc.status != 503:
            raise
        return {"status": "unready", "detail": str(exc)}


def workflows() -> Flow[list[dict[str, Any]]]:
    return (yield from items(WORKFLOWS))


def workflow(name: str) -> Flow[dict[str, Any]]:
    return (yield from raw("GET", f"{WORKFLOWS}/{segment(name)}"))


def start_run(workflow: str, args: Mapping[str, Any] | None) -> Flow[dict[str, Any]]:
    body = {"args": dict(args or {})}
    return (yield from raw("POST", f"{WORKFLOWS}/{segment(workflow)}/runs", json=body))


def runs(workflow: str | None, state: str | None, page: int, per_page: int) -> Flow[dict[str, Any]]:
    params = {"workflow": workflow, "state": state, "page": page, "per_page": per_page}
    return (yield from raw("GET", RUNS, params))


def run(run_id: int, action: str | None = None) -> Flow[dict[str, Any]]:
    """A run (GET), or what it is after ``action`` (``stop``, ``resume``, ``retry-failed``)."""
    if action is None:
        return (yield from raw("GET", f"{RUNS}/{run_id}"))
    return (yield from raw("POST", f"{RUNS}/{run_id}/{action}"))


RUN_POLL = (0.2, 2.0)  # where a run cannot be streamed: the first poll's wait, the longest


def follow_run(run_id: int, deadline: float | None = None) -> Steps:
    """The run now, then again at each change of a node's job, until it is no longer
    ``running``: the last one is the run as it ended, read anew.

    Between, the nodes' ``job_id`` and ``state`` follow the run's event stream, and each
    run's ``nodes`` is a :class:`~jobyard.client.nodes.RunNodes` that shares what did
    not change with the one before; where the server cannot stream it, the run is
    polled, less often while nothing changes. Where retention removed events the
    stream would have resumed from (a ``reset``), the run is read anew and followed on
    from the reset's place.
    """
    current = yield from run(run_id)
    yield Emit(current)
    request = StreamRequest("GET", f"{RUNS}/{run_id}/events")
    # From the run's first event: a stream "from now" opened after the read missed what
    # changed in between. What the read showed already is passed over (:class:`_Behind`).
    place: int | None = 0
    while current["state"] == "running":
        stream = StreamSpec(lambda _: request, last_event_id=place, deadline=deadline)
        history = NodeHistory(current["nodes"])
        behind = _Behind(current["nodes"] if place == 0 else {})  # a reset's place: no replay
        try:
            while (event := (yield Next(stream))) is not None and event.kind != "close":
                if behind.shown(event.kind, event.data):
                    continue
                if (nodes := _moved(history, event.kind, event.data)) is not None:
                    current = current | {"nodes": nodes}
                    yield Emit(current)
        except StreamUnavailable:
            yield from poll_run(current, deadline)
            return
        except StreamReset as reset:
            place = reset.event.id  # None: the run had ended, there is no more to follow
            current = yield from run(run_id)
            yield Emit(current)
            if place is None:
                return
            continue
        yield Emit((yield from reread(lambda: run(run_id), deadline)))
        return


# The events of a run's stream that move a node: a node's job made, or its state changed.
# The run's own (``workflow_finished``: the run's state) name the node they were stored with.
NODE_EVENTS = frozenset({"workflow_node_state", "job_created"})


class _Behind:
    """The nodes whose change the run's read showed and the replayed stream has not
    reached yet: each node's events are passed over until the one that made it as read,
    the same job in the same state on the same attempt (a retried job is running again
    on its next attempt).

    A node's events come in the order they happened, so the read's state is among them.
    One a job reaches twice on one attempt (running again after a pause, waiting again
    after a reopening) is matched at its first: the changes after it are told again,
    none lost. An event that must come after the read's ends the wait too, should the
    read's own event be missing (retention removes events): one of a newer job of the
    node (restarted since), of a later attempt, or of a later phase of the same attempt
    (running after queued, an end after either).
    """

    def __init__(self, nodes: Mapping[str, Any]) -> None:
        self._read = {
            name: (node["job_id"], node.get("attempt") or 0, node.get("state"))
            for name, node in nodes.items()
            if isinstance(node, Mapping) and isinstance(node.get("job_id"), int)
        }
        self._attempts: dict[str, tuple[int, int]] = {}  # (job, attempt) each node is on

    def shown(self, kind: str, data: Mapping[str, Any]) -> bool:
        """Whether the event is one the read showed already (or older)."""
        name = data.get("node")
        job_id = data.get("job_id")
        if kind not in NODE_EVENTS or name not in self._read or not isinstance(job_id, int):
            return False
        if "state" not in data:
            return False
        read_job, read_attempt, read_state = self._read[name]
        attempt = _attempt_on(self._attempts, name, job_id, data.get("attempt"))
        same_attempt = attempt is None or attempt == read_attempt  # None: not said yet
        if (job_id, data["state"]) == (read_job, read_state) and same_attempt:
            del self._read[name]  # as read: what follows is new
            return True
        later = job_id > read_job or (
            job_id == read_job
            and (
                (attempt is not None and attempt > read_attempt)
                or (same_attempt and _phase(data["state"]) > _phase(read_state))
            )
        )
        if later:
            del self._read[name]  # the read was behind it
            return False
        return True


def _attempt_on(
    attempts: dict[str, tuple[int, int]], name: str, job_id: int, said: object
) -> int | None:
    """The attempt node ``name``'s job ``job_id`` is on, as its events said (None: not yet)."""
    if isinstance(said, int):
        attempts[name] = (job_id, said)
        return said
    on_job, attempt = attempts.get(name, (None, None))
    return attempt if on_job == job_id else None


def _phase(state: object) -> int:
    """How far a job is: made and waiting (0), running or paused (1), ended (2)."""
    if state in TERMINAL_STATES:
        return 2
    return 1 if state in ("running", "paused") else 0


def _moved(history: NodeHistory, kind: str, data: Mapping[str, Any]) -> RunNodes | None:
    """The nodes with a node's new job or state from an event of the run (what was
    emitted stays as it was), or None if the event changes no node."""
    name = data.get("node")
    if kind not in NODE_EVENTS or not isinstance(name, str) or name not in history:
        return None
    if "state" not in data:
        return None
    node = history.latest()[name]
    moved = {"job_id": data["job_id"], "state": data["state"]}
    if isinstance(data.get("attempt"), int):  # a retry's: the attempt it is at
        moved["attempt"] = data["attempt"]
    if all(node.get(key) == value for key, value in moved.items()):
        return None
    return history.change(name, node | moved)


def poll_run(current: dict[str, Any], deadline: float | None) -> Steps:
    """The run each time it changed, polled until it is no longer ``running``: soon after a
    change, then less and less often while nothing changes."""
    first, longest = RUN_POLL
    pause = first
    while current["state"] == "running":
        yield Sleep(_interval(pause, deadline, "the run"))
        latest = yield from run(current["id"])
        changed = (latest["state"], latest["nodes"]) != (current["state"], current["nodes"])
        pause = first if changed else min(pause * 1.5, longest)
        if changed:
            yield Emit(latest)
        current = latest


def wait_run(run_id: int, timeout: float | None) -> Flow[dict[str, Any]]:
    """The run once it is no longer ``running``; :class:`TimeoutError` after ``timeout`` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    seen: list[dict[str, Any]] = yield from gather(follow_run(run_id, deadline), keep=1)
    return seen[-1]


def samples(job_id: int, attempt: int | None) -> Flow[list[Sample]]:
    answer = yield from call("GET", f"{JOBS}/{job_id}/samples", drop_none({"attempt": attempt}))
    return [Sample.from_dict(item) for item in answer["items"]]


def queues() -> Flow[list[QueueInfo]]:
    return [QueueInfo.from_dict(item) for item in (yield from items(QUEUES))]


def queue_action(name: str, action: str) -> Flow[QueueInfo]:
    return QueueInfo.from_dict((yield from call("POST", f"{QUEUES}/{segment(name)}/{action}")))


def schedules() -> Flow[list[ScheduleInfo]]:
    return [ScheduleInfo.from_dict(item) for item in (yield from items(SCHEDULES))]


def schedule(method: str, name: str, action: str | None = None) -> Flow[ScheduleInfo]:
    path = (
        f"{SCHEDULES}/{segment(name)}"
        if action is None
        else f"{SCHEDULES}/{segment(name)}/{action}"
    )
    return ScheduleInfo.from_dict((yield from call(method, path)))


def create_schedule(definition: Mapping[str, Any]) -> Flow[ScheduleInfo]:
    return ScheduleInfo.from_dict((yield from call("POST", SCHEDULES, json=dict(definition))))


def workers() -> Flow[list[WorkerStatus]]:
    return [WorkerStatus.from_dict(item) for item in (yield from items(WORKERS))]


def worker(name: str) -> Flow[WorkerStatus]:
    return WorkerStatus.from_dict((yield from call("GET", f"{WORKERS}/{segment(name)}")))


def drain(name: str, timeout: str | float | None) -> Flow[WorkerStatus]:
    body = drop_none({"timeout": timeout})
    return WorkerStatus.from_dict(
        (yield from call("POST", f"{WORKERS}/{segment(name)}/drain", json=body))
    )


def notifications(
    page: int, per_page: int, status: Names, event: Names, job: int | None, run: int | None
) -> Flow[NotificationPage]:
    params: dict[str, Any] = {"page": page, "per_page": per_page, "job": job, "run": run}
    params |= {"status": csv(status), "event": csv(event)}
    return NotificationPage.from_dict((yield from call("GET", NOTIFICATIONS, params)))


def notification_channels() -> Flow[dict[str, Any]]:
    return (yield from raw("GET", f"{NOTIFICATIONS}/channels"))


# -- access ----------------------------------------------------------------------------------
def me() -> Flow[Me]:
    return Me.from_dict((yield from call("GET", "/api/v1/me")))


def change_password(current: str, new: str) -> Flow[None]:
    body = {"current_password": current, "new_password": new}
    yield from call("POST", "/api/v1/me/password", json=body)


def create_token(name: str, role: str | None, expires_in: str | float | None) -> Flow[CreatedToken]:
    body = {"name": name, "expires_in": expires_in} | drop_none({"role": role})
    return CreatedToken.from_dict((yield from call("POST", TOKENS, json=body)))


def tokens(all: bool) -> Flow[list[TokenInfo]]:
    answer = yield from call("GET", TOKENS, {"all": "true" if all else None})
    return [TokenInfo.from_dict(item) for item in answer["items"]]


def revoke_token(token_id: int) -> Flow[TokenInfo]:
    return TokenInfo.from_dict((yield from call("DELETE", f"{TOKENS}/{token_id}")))


def users() -> Flow[list[UserInfo]]:
    return [UserInfo.from_dict(item) for item in (yield from items(USERS))]


def add_user(name: str, password: str, role: str) -> Flow[UserInfo]:
    body = {"name": name, "password": password, "role": role}
    return UserInfo.from_dict((yield from call("POST", USERS, json=body)))


def change_user(name: str, role: str | None, password: str | None) -> Flow[UserInfo]:
    body = drop_none({"role": role, "password": password})
    return UserInfo.from_dict((yield from call("PATCH", f"{USERS}/{segment(name)}", json=body)))


def audit(
    page: int,
    per_page: int,
    actor: Names,
    action: Names,
    outcome: Names,
    since: datetime | None,
    until: datetime | None,
    search: str | None,
) -> Flow[AuditPage]:
    params: dict[str, Any] = {"page": page, "per_page": per_page, "search": search}
    params |= {"actor": csv(actor), "action": csv(action), "outcome": csv(outcome)}
    params |= {"since": iso(since, "since"), "until": iso(until, "until")}
    return AuditPage.from_dict((yield from call("GET", "/api/v1/audit", params)))


# -- request bodies and query values ---------------------------------------------------------
def submission(
    type: str,
    args: Mapping[str, Any] | None = None,
    priority: int | None = None,
    queue: str | None = None,
    run_at: datetime | None = None,
    hold: bool = False,
    name: str | None = None,
    idempotency_key: str | None = None,
    depends_on: Iterable[Upstream] = (),
) -> dict[str, Any]:
    """The JSON body submitting one job (a naive ``run_at`` is taken as local time)."""
    upstream = [_upstream(item) for item in depends_on] or None
    body: dict[str, Any] = {"type": type, "args": dict(args or {}), "priority": priority}
    body |= {"queue": queue, "run_at": iso(run_at, "run_at"), "hold": hold, "name": name}
    body |= {"idempotency_key": idempotency_key, "depends_on": upstream}
    return drop_none(body)


def _upstream(item: Upstream) -> dict[str, Any]:
    if isinstance(item, Dependency):
        return {"job": item.job, "on": item.on}
    if isinstance(item, Mapping):
        return dict(item)
    return {"job": item}


def iso(when: datetime | None, name: str) -> str | None:
    """An aware ISO 8601 time (a naive one is local time); ``name``: the parameter, if wrong.

    Only a ``datetime``: a string (``"2h"``, ``"yesterday"``) would be guessed at.
    """
    if when is None:
        return None
    if not isinstance(when, datetime):
        raise TypeError(
            f"{name} must be a datetime, e.g. datetime.now(UTC) - timedelta(hours=2), "
            f"not {type(when).__name__} {when!r}"
        )
    try:
        return local_time(when).isoformat()
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def csv(names: Names) -> str | None:
    if names is None or isinstance(names, str):
        return names or None
    return ",".join(names) or None


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
