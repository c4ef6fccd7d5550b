"""The Python client of the jobyard HTTP API.

>>> with Client("http://127.0.0.1:8000") as client:      # doctest: +SKIP
...     job = client.submit("export", {"from_date": "2026-01-01"})
...     for line in client.follow_logs(job.id):
...         print(line.line)
...     print(client.wait(job.id).state)

Every method raises :class:`ApiError` (:class:`NotFound`, :class:`Conflict`,
:class:`Invalid`, :class:`Unauthorized`, :class:`Forbidden`) when the server
answers with a problem, and :class:`ServerUnreachable` when it cannot be reached.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import httpx

from jobyard.client.auth import credentials
from jobyard.client.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServerUnreachable,
    Unauthorized,
)
from jobyard.client.models import (
    ActionResult,
    AuditEntry,
    AuditPage,
    CreatedToken,
    Dependency,
    Event,
    JobInfo,
    JobPage,
    JobTypeInfo,
    LogLine,
    LogPage,
    Me,
    Notification,
    NotificationPage,
    TokenInfo,
    UserInfo,
    WorkerStatus,
)
from jobyard.client.poll import LogGetter, drain_logs, poll_events, poll_logs
from jobyard.client.records import QueueInfo, Sample, ScheduleInfo
from jobyard.client.stream import EventStream, StreamRequest, StreamReset, StreamUnavailable

__all__ = [
    "DEFAULT_SERVER",
    "ActionResult",
    "ApiError",
    "AuditEntry",
    "AuditPage",
    "Client",
    "Conflict",
    "CreatedToken",
    "Dependency",
    "Event",
    "Forbidden",
    "Invalid",
    "JobInfo",
    "JobPage",
    "JobTypeInfo",
    "LogLine",
    "LogPage",
    "Me",
    "NotFound",
    "Notification",
    "NotificationPage",
    "QueueInfo",
    "Sample",
    "ScheduleInfo",
    "ServerUnreachable",
    "StreamReset",
    "StreamUnavailable",
    "TokenInfo",
    "Unauthorized",
    "UserInfo",
    "WorkerStatus",
]

DEFAULT_SERVER = "http://127.0.0.1:8000"
JOBS = "/api/v1/jobs"
TYPES = "/api/v1/job-types"
WORKERS = "/api/v1/workers"
NOTIFICATIONS = "/api/v1/notifications"
ACTIONS_LIMIT = 500  # ids a request of act_many
TOKENS = "/api/v1/tokens"
USERS = "/api/v1/users"
QUEUES = "/api/v1/queues"
SCHEDULES = "/api/v1/schedules"
Names = str | Iterable[str] | None
Upstream = int | Dependency | Mapping[str, Any]


class Client:
    """A synchronous client of one jobyard server (a context manager).

    Credentials: an API ``token``, or ``auth`` as (user, password); without
    either, ``JOBYARD_TOKEN``, or ``JOBYARD_USER`` and ``JOBYARD_PASSWORD``, or
    the token that ``jobyard login`` saved (:func:`credentials`).
    ``timeout`` bounds each request (streams wait for events without limit);
    ``retries`` bounds the reconnections in a row of an event stream that get
    nothing, the first after ``reconnect_delay`` seconds, then twice as long
    each time; ``poll_interval`` paces polling where the server cannot stream.
    """

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        *,
        timeout: float = 30,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        retries: int = 5,
        reconnect_delay: float = 0.5,
        poll_interval: float = 0.5,
        token: str | None = None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.server = server if "://" in server else f"http://{server}"
        self.retries = retries
        self.reconnect_delay = reconnect_delay
        self.poll_interval = poll_interval
        self._http = httpx.Client(
            base_url=self.server,
            timeout=timeout,
            transport=transport,
            headers=headers,
            auth=credentials(token, auth),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- jobs -----------------------------------------------------------------
    def submit(
        self,
        type: str,
        args: Mapping[str, Any] | None = None,
        *,
        priority: int | None = None,
        queue: str | None = None,
        run_at: datetime | None = None,
        hold: bool = False,
        name: str | None = None,
        idempotency_key: str | None = None,
        depends_on: Iterable[Upstream] = (),
    ) -> JobInfo:
        """Submit a job; a repeated ``idempotency_key`` returns the first job.

        ``depends_on`` lists the jobs it waits for: an id (it must succeed), a
        :class:`Dependency` (``Dependency(7, on="failed")``) or its JSON
        (``{"job": 7, "on": "finished"}``).
        """
        body = submission(
            type, args, priority, queue, run_at, hold, name, idempotency_key, depends_on
        )
        return JobInfo.from_dict(self._call("POST", JOBS, json=body))

    def submit_many(self, jobs: Iterable[Mapping[str, Any]]) -> list[JobInfo]:
        """Submit jobs in one transaction: all are created or none.

        Each item has the keyword arguments of :meth:`submit`
        (``{"type": "echo", "args": {...}, "hold": True}``).
        """
        bodies = [submission(**job) for job in jobs]
        answer = self._call("POST", f"{JOBS}/batch", json={"jobs": bodies})
        return [JobInfo.from_dict(item) for item in answer["items"]]

    def jobs(
        self,
        page: int = 1,
        per_page: int = 50,
        sort: str | None = None,
        search: str | None = None,
        state: Names = None,
        type: Names = None,
        queue: Names = None,
        worker: Names = None,
    ) -> JobPage:
        """One page of jobs; ``state``, ``type``, ``queue`` and ``worker`` take one name
        or several."""
        params = {"page": page, "per_page": per_page, "sort": sort, "search": search}
        params |= {"state": _csv(state), "type": _csv(type), "queue": _csv(queue)}
        params["worker"] = _csv(worker)
        return JobPage.from_dict(self._call("GET", JOBS, params=params))

    def iter_jobs(
        self,
        sort: str | None = None,
        search: str | None = None,
        state: Names = None,
        type: Names = None,
        queue: Names = None,
        per_page: int = 200,
        worker: Names = None,
    ) -> Iterator[JobInfo]:
        """Every matching job, page after page (each once, even if jobs come meanwhile)."""
        seen: set[int] = set()
        for number in range(1, 1_000_000):
            page = self.jobs(number, per_page, sort, search, state, type, queue, worker)
            yield from (job for job in page.items if job.id not in seen)
            seen.update(job.id for job in page.items)
            if number >= page.pages or not page.items:
                return

    def job(self, job_id: int) -> JobInfo:
        return JobInfo.from_dict(self._call("GET", f"{JOBS}/{job_id}"))

    def start(self, job_id: int) -> JobInfo:
        """Release a held job."""
        return self._act(job_id, "start")

    def pause(self, job_id: int) -> JobInfo:
        """Pause a running job, or hold one that has not started."""
        return self._act(job_id, "pause")

    def resume(self, job_id: int) -> JobInfo:
        """Resume a paused job, or release a held one."""
        return self._act(job_id, "resume")

    def kill(self, job_id: int) -> JobInfo:
        """Kill a job (on a running one, ``control`` shows the kill its worker will do)."""
        return self._act(job_id, "kill")

    def restart(self, job_id: int, args: Mapping[str, Any] | None = None) -> JobInfo:
        """A new job from an ended one's type and arguments (``args`` overrides some)."""
        body = {"args": dict(args)} if args is not None else None
        return JobInfo.from_dict(self._call("POST", f"{JOBS}/{job_id}/restart", json=body))

    def remove(self, job_id: int, force: bool = False) -> None:
        """Remove an ended job; ``force`` kills a live one first."""
        self._call("DELETE", f"{JOBS}/{job_id}", params={"force": "true" if force else None})

    def act_many(
        self, action: str, ids: Iterable[int], *, force: bool = False
    ) -> list[ActionResult]:
        """``action`` (start, pause, resume, kill, restart or remove) on every job of ``ids``.

        Each job is handled on its own, as by the single methods, and gets a
        result (in the order of ``ids``, each id once): one that is gone or whose
        state forbids the action does not stop the others. ``force`` removes live
        jobs (killing them first). Many ids are sent in requests of 500.
        """
        wanted = list(dict.fromkeys(ids))
        results: list[ActionResult] = []
        for start in range(0, len(wanted), ACTIONS_LIMIT):
            body = {"action": action, "ids": wanted[start : start + ACTIONS_LIMIT], "force": force}
            answer = self._call("POST", f"{JOBS}/actions", json=body)
            results += [ActionResult.from_dict(item) for item in answer["results"]]
        return results

    def _act(self, job_id: int, action: str) -> JobInfo:
        return JobInfo.from_dict(self._call("POST", f"{JOBS}/{job_id}/{action}"))

    # -- logs -----------------------------------------------------------------
    def logs(self, job_id: int, after: int = 0, limit: int = 1000) -> LogPage:
        """Up to ``limit`` log lines after sequence number ``after``."""
        params = {"after": after, "limit": limit}
        return LogPage.from_dict(self._call("GET", f"{JOBS}/{job_id}/logs", params=params))

    def iter_logs(self, job_id: int, after: int = 0) -> Iterator[LogLine]:
        """Every log line stored now, page after page."""
        return drain_logs(lambda seq: self.logs(job_id, seq), after)

    def follow_logs(self, job_id: int, after: int = 0) -> Iterator[LogLine]:
        """Log lines as they are written, until the job has ended (polls if it cannot stream)."""
        last = after

        def request(_: EventStream) -> StreamRequest:
            return StreamRequest("GET", f"{JOBS}/{job_id}/logs", {"follow": "true", "after": last})

        try:
            for event in self._stream(request):
                if event.kind == "log" and int(event.data.get("seq", 0)) > last:
                    line = LogLine.from_dict(event.data)
                    last = line.seq
                    yield line
        except StreamUnavailable:
            get_logs = self._log_getter(job_id)
            yield from poll_logs(get_logs, after=last, interval=self.poll_interval)

    def samples(self, job_id: int, attempt: int | None = None) -> list[Sample]:
        """CPU and memory samples of a job (of one ``attempt``, else of the last ones kept)."""
        answer = self._call("GET", f"{JOBS}/{job_id}/samples", params={"attempt": attempt})
        return [Sample.from_dict(item) for item in answer["items"]]

    # -- events ---------------------------------------------------------------
    def events(self, job_id: int, last_event_id: int | None = None) -> Iterator[Event]:
        """The job's ``state``, ``progress``, ``log`` and ``metric`` events, then ``close``.

        It starts after ``last_event_id`` (from the start without it). Against a
        server that cannot stream, the events are made up by polling (no ids).
        """
        return self._job_events(job_id, last_event_id)

    def all_events(
        self,
        type: Names = None,
        queue: Names = None,
        job: int | None = None,
        last_event_id: int | None = None,
        *,
        from_now: bool = False,
    ) -> Iterator[Event]:
        """``job_created``, ``job_state`` and ``job_terminated`` of every job; never ends.

        It starts after ``last_event_id``; without it, from the first event, or
        with ``from_now`` from what happens next. Raises :class:`StreamUnavailable`
        when the server cannot stream.
        """
        params = {"type": _csv(type), "queue": _csv(queue), "job": job}
        params |= {"from": "now" if from_now else None}
        request = StreamRequest("GET", "/api/v1/events", _drop_none(params))
        return iter(self._stream(lambda _: request, last_event_id, until_close=False))

    def submit_and_follow(
        self, type: str, args: Mapping[str, Any] | None = None, **options: Any
    ) -> Iterator[Event]:
        """Submit a job (options as :meth:`submit`) and stream its events until ``close``.

        The job is submitted when the iteration starts. The first event is its
        ``state`` event of creation. Without an ``idempotency_key`` one is made up,
        so that a submission retried after a dropped connection is not doubled.
        """
        options.setdefault("idempotency_key", uuid.uuid4().hex)
        body = submission(type, args, **options)

        def request(stream: EventStream) -> StreamRequest:
            if stream.job_id is None:
                return StreamRequest("POST", JOBS, json=body)
            return StreamRequest("GET", f"{JOBS}/{stream.job_id}/events")

        try:
            yield from self._stream(request)
        except StreamUnavailable as exc:
            if exc.status >= 300 or not isinstance(exc.body, dict):
                raise
            # it answered the new job without streaming: follow the job's own stream
            yield from self._job_events(JobInfo.from_dict(exc.body).id)

    def wait(self, job_id: int, timeout: float | None = None) -> JobInfo:
        """Block until the job has ended and return it.

        :class:`TimeoutError` once ``timeout`` seconds have passed (noticed at
        the next event or keep-alive of the server, or poll).
        """
        job = self.job(job_id)
        if job.terminal:
            return job
        deadline = None if timeout is None else time.monotonic() + timeout
        for event in self._job_events(job_id, deadline=deadline, with_logs=False):
            if event.kind == "close":
                break
        return self.job(job_id)

    def _job_events(
        self,
        job_id: int,
        last_event_id: int | None = None,
        deadline: float | None = None,
        with_logs: bool = True,
    ) -> Iterator[Event]:
        request = StreamRequest("GET", f"{JOBS}/{job_id}/events")
        try:
            yield from self._stream(lambda _: request, last_event_id, deadline=deadline)
        except StreamUnavailable:
            self.job(job_id)  # NotFound if there is no such job
            yield from poll_events(
                lambda: self.job(job_id),
                self._log_getter(job_id) if with_logs else None,
                interval=self.poll_interval,
                deadline=deadline,
            )

    def _stream(
        self,
        request: Callable[[EventStream], StreamRequest],
        last_event_id: int | None = None,
        *,
        until_close: bool = True,
        deadline: float | None = None,
    ) -> EventStream:
        return EventStream(
            self._http,
            request,
            last_event_id=last_event_id,
            until_close=until_close,
            retries=self.retries,
            delay=self.reconnect_delay,
            deadline=deadline,
        )

    def _log_getter(self, job_id: int) -> LogGetter:
        return lambda after: self.logs(job_id, after)

    # -- job types ------------------------------------------------------------
    def job_types(self) -> list[JobTypeInfo]:
        return [JobTypeInfo.from_dict(item) for item in self._call("GET", TYPES)["items"]]

    def job_type(self, name: str) -> JobTypeInfo:
        return JobTypeInfo.from_dict(self._call("GET", f"{TYPES}/{name}"))

    def create_job_type(self, definition: Mapping[str, Any]) -> JobTypeInfo:
        """Store a new type (its ``name`` inside); :class:`Conflict` if the name exists."""
        return JobTypeInfo.from_dict(self._call("POST", TYPES, json=dict(definition)))

    def put_job_type(self, name: str, definition: Mapping[str, Any]) -> JobTypeInfo:
        """Create or replace a type stored in the database."""
        answer = self._call("PUT", f"{TYPES}/{name}", json=dict(definition))
        return JobTypeInfo.from_dict(answer)

    def delete_job_type(self, name: str) -> None:
        self._call("DELETE", f"{TYPES}/{name}")

    # -- workflows ------------------------------------------------------------
    def workflows(self) -> list[dict[str, Any]]:
        """The workflows of the server's configuration: nodes and edges."""
        items: list[dict[str, Any]] = self._call("GET", "/api/v1/workflows")["items"]
        return items

    def start_run(self, workflow: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Start a run; the answer has its ``id``, ``state`` and every node's job."""
        path = f"/api/v1/workflows/{workflow}/runs"
        run: dict[str, Any] = self._call("POST", path, json={"args": dict(args or {})})
        return run

    def runs(
        self,
        workflow: str | None = None,
        state: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> dict[str, Any]:
        params = {"workflow": workflow, "state": state, "page": page, "per_page": per_page}
        found: dict[str, Any] = self._call("GET", "/api/v1/workflow-runs", params=params)
        return found

    def run(self, run_id: int) -> dict[str, Any]:
        run: dict[str, Any] = self._call("GET", f"/api/v1/workflow-runs/{run_id}")
        return run

    def control_run(self, run_id: int, action: str) -> dict[str, Any]:
        """``stop``, ``resume`` or ``retry-failed`` a run."""
        run: dict[str, Any] = self._call("POST", f"/api/v1/workflow-runs/{run_id}/{action}")
        return run

    # -- queues and schedules -------------------------------------------------
    def queues(self) -> list[QueueInfo]:
        """Every queue: paused or not, its limit, and how many jobs it has in each state."""
        return [QueueInfo.from_dict(item) for item in self._call("GET", QUEUES)["items"]]

    def pause_queue(self, name: str) -> QueueInfo:
        """Stop dispatching the queue's jobs; running jobs go on."""
        return QueueInfo.from_dict(self._call("POST", f"{QUEUES}/{name}/pause"))

    def resume_queue(self, name: str) -> QueueInfo:
        return QueueInfo.from_dict(self._call("POST", f"{QUEUES}/{name}/resume"))

    def schedules(self) -> list[ScheduleInfo]:
        """Every schedule, of the configuration and stored, with its next fire time."""
        return [ScheduleInfo.from_dict(item) for item in self._call("GET", SCHEDULES)["items"]]

    def schedule(self, name: str) -> ScheduleInfo:
        return ScheduleInfo.from_dict(self._call("GET", f"{SCHEDULES}/{name}"))

    def create_schedule(self, definition: Mapping[str, Any]) -> ScheduleInfo:
        """Store a schedule as in ``jobyard.yaml`` plus its ``name``; :class:`Conflict` if taken."""
        return ScheduleInfo.from_dict(self._call("POST", SCHEDULES, json=dict(definition)))

    def pause_schedule(self, name: str) -> ScheduleInfo:
        return ScheduleInfo.from_dict(self._call("POST", f"{SCHEDULES}/{name}/pause"))

    def resume_schedule(self, name: str) -> ScheduleInfo:
        return ScheduleInfo.from_dict(self._call("POST", f"{SCHEDULES}/{name}/resume"))

    def delete_schedule(self, name: str) -> None:
        """Delete a stored schedule (one of the configuration file: :class:`Conflict`)."""
        self._call("DELETE", f"{SCHEDULES}/{name}")

    # -- workers --------------------------------------------------------------
    def workers(self) -> list[WorkerStatus]:
        """Every registered worker: state, queues, tags and the jobs it runs."""
        items = self._call("GET", WORKERS)["items"]
        return [WorkerStatus.from_dict(item) for item in items]

    def worker(self, name: str) -> WorkerStatus:
        return WorkerStatus.from_dict(self._call("GET", f"{WORKERS}/{name}"))

    def drain(self, name: str, timeout: str | float | None = None) -> WorkerStatus:
        """Ask a worker to stop claiming and hand back what still runs after ``timeout``.

        ``timeout`` is seconds or a duration such as ``"60s"``; None keeps the
        worker's own drain timeout. :class:`Conflict` if the worker is lost.
        """
        body = _drop_none({"timeout": timeout})
        return WorkerStatus.from_dict(self._call("POST", f"{WORKERS}/{name}/drain", json=body))

    def notifications(
        self,
        page: int = 1,
        per_page: int = 50,
        status: Names = None,
        event: Names = None,
        job: int | None = None,
        run: int | None = None,
    ) -> NotificationPage:
        """One page of the outbox, newest first; ``status``/``event`` take one name or several."""
        params: dict[str, Any] = {"page": page, "per_page": per_page, "job": job, "run": run}
        params |= {"status": _csv(status), "event": _csv(event)}
        return NotificationPage.from_dict(self._call("GET", NOTIFICATIONS, params=params))

    def health(self) -> dict[str, Any]:
        """The server's ``/healthz``: status, version, and which parts it runs."""
        answer: dict[str, Any] = self._call("GET", "/healthz")
        return answer

    # -- access ---------------------------------------------------------------
    def me(self) -> Me:
        """Who this client's credentials belong to, and the role its requests have."""
        return Me.from_dict(self._call("GET", "/api/v1/me"))

    def create_token(
        self, name: str, role: str | None = None, expires_in: str | float | None = "30d"
    ) -> CreatedToken:
        """A new API token of the caller's; its ``secret`` is shown this once.

        ``role`` is at most the caller's (default: theirs); ``expires_in`` is
        seconds or a duration such as ``"90d"``; None: it never expires.
        """
        body = {"name": name, "expires_in": expires_in} | _drop_none({"role": role})
        return CreatedToken.from_dict(self._call("POST", TOKENS, json=body))

    def tokens(self, all: bool = False) -> list[TokenInfo]:
        """The caller's tokens, revoked and expired ones too; with ``all``, everyone's (admins)."""
        answer = self._call("GET", TOKENS, params={"all": "true" if all else None})
        return [TokenInfo.from_dict(item) for item in answer["items"]]

    def revoke_token(self, token_id: int) -> TokenInfo:
        """Revoke one of the caller's tokens (an admin: anyone's); it stops working at once."""
        return TokenInfo.from_dict(self._call("DELETE", f"{TOKENS}/{token_id}"))

    def users(self) -> list[UserInfo]:
        """Every user, by name (admins)."""
        return [UserInfo.from_dict(item) for item in self._call("GET", USERS)["items"]]

    def add_user(self, name: str, password: str, role: str = "viewer") -> UserInfo:
        """A new user (admins); :class:`Conflict` if the name is taken."""
        body = {"name": name, "password": password, "role": role}
        return UserInfo.from_dict(self._call("POST", USERS, json=body))

    def change_user(
        self, name: str, *, role: str | None = None, password: str | None = None
    ) -> UserInfo:
        """Change a user's role and/or password (admins; the last admin stays one)."""
        body = _drop_none({"role": role, "password": password})
        return UserInfo.from_dict(self._call("PATCH", f"{USERS}/{name}", json=body))

    def remove_user(self, name: str) -> None:
        """Remove a user with their tokens and sessions (admins; not the last admin)."""
        self._call("DELETE", f"{USERS}/{name}")

    def audit(
        self,
        page: int = 1,
        per_page: int = 50,
        actor: Names = None,
        action: Names = None,
        outcome: Names = None,
        since: datetime | None = None,
        until: datetime | None = None,
        search: str | None = None,
    ) -> AuditPage:
        """One page of the audit log, newest first (admins); naive times are local time.

        ``actor``, ``action`` and ``outcome`` take one name or several;
        ``search`` looks in the targets.
        """
        params: dict[str, Any] = {"page": page, "per_page": per_page, "search": search}
        params |= {"actor": _csv(actor), "action": _csv(action), "outcome": _csv(outcome)}
        params |= {"since": _iso(since), "until": _iso(until)}
        return AuditPage.from_dict(self._call("GET", "/api/v1/audit", params=params))

    # -- HTTP -----------------------------------------------------------------
    def _call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        try:
            response = self._http.request(method, path, params=_drop_none(params or {}), json=json)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"cannot reach {self.server}: {_reason(exc)}") from exc
        if response.is_error:
            raise ApiError.from_response(response)
        return response.json() if response.content else None


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
    when = _iso(run_at)
    upstream = [_upstream(item) for item in depends_on] or None
    body: dict[str, Any] = {"type": type, "args": dict(args or {}), "priority": priority}
    body |= {"queue": queue, "run_at": when, "hold": hold, "name": name}
    body |= {"idempotency_key": idempotency_key, "depends_on": upstream}
    return _drop_none(body)


def _upstream(item: Upstream) -> dict[str, Any]:
    if isinstance(item, Dependency):
        return {"job": item.job, "on": item.on}
    if isinstance(item, Mapping):
        return dict(item)
    return {"job": item}


def _iso(when: datetime | None) -> str | None:
    """An aware ISO 8601 time (a naive one is local time)."""
    return when.astimezone().isoformat() if when is not None else None


def _csv(names: Names) -> str | None:
    if names is None or isinstance(names, str):
        return names or None
    return ",".join(names) or None


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _reason(exc: httpx.TransportError) -> str:
    return str(exc) or type(exc).__name__
