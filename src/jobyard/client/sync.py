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

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import httpx

from jobyard.client import calls
from jobyard.client.auth import credentials
from jobyard.client.calls import Names, Upstream, submission
from jobyard.client.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServerUnreachable,
    Unauthorized,
)
from jobyard.client.events import Event
from jobyard.client.flow import Settings, SyncDriver
from jobyard.client.models import (
    ActionResult,
    AuditEntry,
    AuditPage,
    CreatedToken,
    Dependency,
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
from jobyard.client.records import QueueInfo, Sample, ScheduleInfo
from jobyard.client.stream import StreamReset, StreamUnavailable
from jobyard.client.values import server_url

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
    "submission",
]

DEFAULT_SERVER = "http://127.0.0.1:8000"


class Client:
    """A synchronous client of one jobyard server (a context manager).

    Credentials: an API ``token``, or ``auth`` as (user, password); without
    either, ``JOBYARD_TOKEN``, or ``JOBYARD_USER`` and ``JOBYARD_PASSWORD``, or
    the token that ``jobyard login`` saved for this server (:func:`credentials`;
    a token saved for another server is not sent). ``token`` is the secret (a
    ``str``, ``jy_…``, as ``create_token(...).secret``).
    ``timeout`` bounds each request (streams wait for events without limit);
    ``retries`` bounds the reconnections in a row of an event stream that get
    nothing, the first after ``reconnect_delay`` seconds, then twice as long
    each time; ``poll_interval`` paces polling where the server cannot stream.

    Each method runs the operation of the same name in :mod:`jobyard.client.calls`,
    which :class:`~jobyard.client.AsyncClient` runs too.
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
        self.server = server_url(server)
        self.retries = retries
        self.reconnect_delay = reconnect_delay
        self.poll_interval = poll_interval
        self._http = httpx.Client(
            base_url=self.server,
            timeout=timeout,
            transport=transport,
            headers=headers,
            auth=credentials(token, auth, server=self.server),
        )
        self._driver = SyncDriver(self._http, Settings(retries, reconnect_delay))

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
        return self._driver.run(calls.submit(body))

    def submit_once(
        self,
        type: str,
        args: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str,
        priority: int | None = None,
        queue: str | None = None,
        run_at: datetime | None = None,
        hold: bool = False,
        name: str | None = None,
        depends_on: Iterable[Upstream] = (),
    ) -> tuple[JobInfo, bool]:
        """Submit a job with ``idempotency_key`` (as :meth:`submit`); whether it is new.

        ``(job, True)`` for a new job; ``(job, False)`` when the key was seen
        before: ``job`` is then the first job submitted with it, as it is now.
        """
        body = submission(
            type, args, priority, queue, run_at, hold, name, idempotency_key, depends_on
        )
        return self._driver.run(calls.submit_once(body))

    def submit_many(self, jobs: Iterable[Mapping[str, Any]]) -> list[JobInfo]:
        """Submit jobs in one transaction: all are created or none.

        Each item has the keyword arguments of :meth:`submit`
        (``{"type": "echo", "args": {...}, "hold": True}``).
        """
        return self._driver.run(calls.submit_many(jobs))

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
        since: datetime | None = None,
        until: datetime | None = None,
        after: str | None = None,
    ) -> JobPage:
        """One page of jobs; ``state``, ``type``, ``queue`` and ``worker`` take one name
        or several. ``since`` and ``until`` keep the jobs created at or after, and before,
        those times (a naive time is local time). ``after``, a page's ``next``, lists the
        jobs after that page's last one (:meth:`iter_jobs` follows it)."""
        return self._driver.run(
            calls.jobs(
                page, per_page, sort, search, state, type, queue, worker, since, until, after
            )
        )

    def iter_jobs(
        self,
        sort: str | None = None,
        search: str | None = None,
        state: Names = None,
        type: Names = None,
        queue: Names = None,
        per_page: int = 200,
        worker: Names = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[JobInfo]:
        """Every matching job, page after page: each job there all along is listed once,
        even if jobs come or go meanwhile (removing the jobs as they come skips none).
        One whose sorted value changes meanwhile (its state, when sorted by state) is
        listed where it was or where it went, once at most."""
        steps = calls.iter_jobs(sort, search, state, type, queue, per_page, worker, since, until)
        return self._driver.iterate(steps)

    def job(self, job_id: int) -> JobInfo:
        return self._driver.run(calls.job(job_id))

    def start(self, job_id: int) -> JobInfo:
        """Release a held job."""
        return self._driver.run(calls.act(job_id, "start"))

    def pause(self, job_id: int) -> JobInfo:
        """Pause a running job, or hold one that has not started."""
        return self._driver.run(calls.act(job_id, "pause"))

    def resume(self, job_id: int) -> JobInfo:
        """Resume a paused job, or release a held one."""
        return self._driver.run(calls.act(job_id, "resume"))

    def kill(self, job_id: int) -> JobInfo:
        """Kill a job (on a running one, ``control`` shows the kill its worker will do)."""
        return self._driver.run(calls.act(job_id, "kill"))

    def restart(self, job_id: int, args: Mapping[str, Any] | None = None) -> JobInfo:
        """A new job from an ended one's type and arguments (``args`` overrides some)."""
        return self._driver.run(calls.restart(job_id, args))

    def remove(self, job_id: int, force: bool = False) -> None:
        """Remove an ended job; ``force`` a live or pending one too."""
        self._driver.run(calls.remove(job_id, force))

    def act_many(
        self, action: str, ids: Iterable[int], *, force: bool = False
    ) -> list[ActionResult]:
        """``action`` (start, pause, resume, kill, restart or remove) on every job of ``ids``.

        Each job is handled on its own, as by the single methods, and gets a
        result (in the order of ``ids``, each id once): one that is gone or whose
        state forbids the action does not stop the others. ``force`` removes live
        and pending jobs too. Many ids are sent in requests of 500.
        """
        return self._driver.run(calls.act_many(action, ids, force))

    # -- logs -----------------------------------------------------------------
    def logs(self, job_id: int, after: int = 0, limit: int = 1000) -> LogPage:
        """Up to ``limit`` log lines after sequence number ``after``."""
        return self._driver.run(calls.logs(job_id, after, limit))

    def iter_logs(self, job_id: int, after: int = 0) -> Iterator[LogLine]:
        """Every log line stored now, page after page."""
        return self._driver.iterate(calls.drain_logs(job_id, after))

    def follow_logs(self, job_id: int, after: int = 0) -> Iterator[LogLine]:
        """Log lines as they are written, until the job has ended (polls if it cannot stream)."""
        return self._driver.iterate(calls.follow_logs(job_id, after, self.poll_interval))

    def samples(self, job_id: int, attempt: int | None = None) -> list[Sample]:
        """CPU and memory samples of a job (of one ``attempt``, else of the last ones kept)."""
        return self._driver.run(calls.samples(job_id, attempt))

    # -- events ---------------------------------------------------------------
    def events(self, job_id: int, last_event_id: int | None = None) -> Iterator[Event]:
        """The job's ``state``, ``progress``, ``log`` and ``metric`` events, then ``close``.

        It starts after ``last_event_id`` (from the start without it). Against a
        server that cannot stream, the events are made up by polling (no ids).
        Each is a typed event of :mod:`jobyard.client.events` (``StateEvent``,
        ``LogEvent`` …), its raw JSON in ``data``.
        """
        steps = calls.job_events(job_id, last_event_id, self.poll_interval)
        return self._driver.iterate(steps)

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
        steps = calls.all_events(type, queue, job, last_event_id, from_now)
        return self._driver.iterate(steps)

    def submit_and_follow(
        self, type: str, args: Mapping[str, Any] | None = None, **options: Any
    ) -> Iterator[Event]:
        """Submit a job (options as :meth:`submit`) and stream its events until ``close``.

        The job is submitted when the iteration starts. The first event is its
        ``state`` event of creation. Without an ``idempotency_key`` one is made up,
        so that a submission retried after a dropped connection is not doubled.
        """
        steps = calls.submit_and_follow(type, args, options, self.poll_interval)
        return self._driver.iterate(steps)

    def wait(self, job_id: int, timeout: float | None = None) -> JobInfo:
        """Block until the job has ended and return it.

        :class:`TimeoutError` once ``timeout`` seconds have passed (noticed at
        the next event or keep-alive of the server, or poll).
        """
        return self._driver.run(calls.wait(job_id, timeout, self.poll_interval))

    # -- job types ------------------------------------------------------------
    def job_types(self) -> list[JobTypeInfo]:
        return self._driver.run(calls.job_types())

    def job_type(self, name: str) -> JobTypeInfo:
        return self._driver.run(calls.job_type("GET", name))

    def create_job_type(self, definition: Mapping[str, Any]) -> JobTypeInfo:
        """Store a new type (its ``name`` inside); :class:`Conflict` if the name exists."""
        return self._driver.run(calls.job_type("POST", "", definition))

    def put_job_type(self, name: str, definition: Mapping[str, Any]) -> JobTypeInfo:
        """Create or replace a type stored in the database."""
        return self._driver.run(calls.job_type("PUT", name, definition))

    def delete_job_type(self, name: str) -> None:
        self._driver.run(calls.delete(calls.TYPES, name))

    # -- workflows ------------------------------------------------------------
    def workflows(self) -> list[dict[str, Any]]:
        """The workflows of the server's configuration: nodes and edges."""
        return self._driver.run(calls.workflows())

    def workflow(self, name: str) -> dict[str, Any]:
        """One workflow: its description, args and nodes (:class:`NotFound` if unknown)."""
        return self._driver.run(calls.workflow(name))

    def start_run(self, workflow: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Start a run; the answer has its ``id``, ``state`` and every node's job."""
        return self._driver.run(calls.start_run(workflow, args))

    def runs(
        self,
        workflow: str | None = None,
        state: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> dict[str, Any]:
        return self._driver.run(calls.runs(workflow, state, page, per_page))

    def run(self, run_id: int) -> dict[str, Any]:
        return self._driver.run(calls.run(run_id))

    def control_run(self, run_id: int, action: str) -> dict[str, Any]:
        """``stop``, ``resume`` or ``retry-failed`` a run."""
        return self._driver.run(calls.run(run_id, action))

    def follow_run(self, run_id: int) -> Iterator[dict[str, Any]]:
        """The run as :meth:`run` answers it, then again each time a node's job changes
        state, until the run is no longer ``running`` (the last one is read anew then).

        Each run stays as it was told: between the first and the last, its ``nodes`` is a
        read-only :class:`~jobyard.client.RunNodes` that shares the nodes that did not
        change with the run before, so that a change costs the same however many nodes
        the run has (``dict(run["nodes"])`` makes a dict of them).

        It follows the run's event stream; against a server that cannot stream it,
        the run is polled, every 0.2 s after a change and up to every 2 s while
        nothing changes. Where retention removed events the stream would have resumed
        from, the run is read anew (and told) and followed on past the gap.
        """
        return self._driver.iterate(calls.follow_run(run_id))

    def wait_run(self, run_id: int, timeout: float | None = None) -> dict[str, Any]:
        """Block until the run is no longer ``running`` (it ended, or was stopped) and
        return it, as :meth:`follow_run` follows it.

        :class:`TimeoutError` once ``timeout`` seconds have passed.
        """
        return self._driver.run(calls.wait_run(run_id, timeout))

    # -- queues and schedules -------------------------------------------------
    def queues(self) -> list[QueueInfo]:
        """Every queue: paused or not, its limit, and how many jobs it has in each state."""
        return self._driver.run(calls.queues())

    def pause_queue(self, name: str) -> QueueInfo:
        """Stop dispatching the queue's jobs; running jobs go on."""
        return self._driver.run(calls.queue_action(name, "pause"))

    def resume_queue(self, name: str) -> QueueInfo:
        return self._driver.run(calls.queue_action(name, "resume"))

    def schedules(self) -> list[ScheduleInfo]:
        """Every schedule, of the configuration and stored, with its next fire time."""
        return self._driver.run(calls.schedules())

    def schedule(self, name: str) -> ScheduleInfo:
        return self._driver.run(calls.schedule("GET", name))

    def create_schedule(self, definition: Mapping[str, Any]) -> ScheduleInfo:
        """Store a schedule as in ``jobyard.yaml`` plus its ``name``; :class:`Conflict` if taken."""
        return self._driver.run(calls.create_schedule(definition))

    def pause_schedule(self, name: str) -> ScheduleInfo:
        return self._driver.run(calls.schedule("POST", name, "pause"))

    def resume_schedule(self, name: str) -> ScheduleInfo:
        return self._driver.run(calls.schedule("POST", name, "resume"))

    def delete_schedule(self, name: str) -> None:
        """Delete a stored schedule (one of the configuration file: :class:`Conflict`)."""
        self._driver.run(calls.delete(calls.SCHEDULES, name))

    # -- workers --------------------------------------------------------------
    def workers(self) -> list[WorkerStatus]:
        """Every registered worker: state, queues, tags and the jobs it runs."""
        return self._driver.run(calls.workers())

    def worker(self, name: str) -> WorkerStatus:
        return self._driver.run(calls.worker(name))

    def forget_worker(self, name: str) -> None:
        """Remove a ``lost`` worker from the list (:class:`Conflict` for a live one: drain
        it instead)."""
        self._driver.run(calls.delete(calls.WORKERS, name))

    def drain(self, name: str, timeout: str | float | None = None) -> WorkerStatus:
        """Ask a worker to stop claiming and hand back what still runs after ``timeout``.

        ``timeout`` is seconds or a duration such as ``"60s"``; None keeps the
        worker's own drain timeout. :class:`Conflict` if the worker is lost.
        """
        return self._driver.run(calls.drain(name, timeout))

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
        return self._driver.run(calls.notifications(page, per_page, status, event, job, run))

    def notification_channels(self) -> dict[str, Any]:
        """The configuration's notification channels and rules, without secrets: ``channels``
        (by name, each with the retry policy it is sent with), ``rules``, ``retry`` and
        ``public_url``."""
        return self._driver.run(calls.notification_channels())

    def health(self) -> dict[str, Any]:
        """The server's ``/healthz``: status, version, and which parts it runs."""
        return self._driver.run(calls.health())

    def ready(self) -> dict[str, Any]:
        """The server's ``/readyz``: ``status`` is ``ready``, or ``unready`` (with a
        ``detail``) while its database does not answer."""
        return self._driver.run(calls.ready())

    # -- access ---------------------------------------------------------------
    def me(self) -> Me:
        """Who this client's credentials belong to, and the role its requests have."""
        return self._driver.run(calls.me())

    def change_password(self, current: str, new: str) -> None:
        """Change the caller's own password; ``current`` proves it is them (:class:`Forbidden`
        when wrong). Their other browser sessions end, and so does the use of the old
        password by any client; API tokens go on (:meth:`tokens`, :meth:`revoke_token`).
        A client that signed in with the old password needs the new one from now on.
        """
        self._driver.run(calls.change_password(current, new))

    def create_token(
        self, name: str, role: str | None = None, expires_in: str | float | None = "30d"
    ) -> CreatedToken:
        """A new API token of the caller's; its ``secret`` is shown this once.

        ``secret`` (the ``jy_…`` string) is what a client sends: ``Client(token=t.secret)``;
        ``token`` is the token's record.

        ``role`` is at most the caller's (default: theirs); ``expires_in`` is
        seconds or a duration such as ``"90d"``; None: it never expires.
        """
        return self._driver.run(calls.create_token(name, role, expires_in))

    def tokens(self, all: bool = False) -> list[TokenInfo]:
        """The caller's tokens, revoked and expired ones too; with ``all``, everyone's (admins)."""
        return self._driver.run(calls.tokens(all))

    def revoke_token(self, token_id: int) -> TokenInfo:
        """Revoke one of the caller's tokens (an admin: anyone's); it stops working at once."""
        return self._driver.run(calls.revoke_token(token_id))

    def users(self) -> list[UserInfo]:
        """Every user, by name (admins)."""
        return self._driver.run(calls.users())

    def add_user(self, name: str, password: str, role: str = "viewer") -> UserInfo:
        """A new user (admins); :class:`Conflict` if the name is taken."""
        return self._driver.run(calls.add_user(name, password, role))

    def change_user(
        self, name: str, *, role: str | None = None, password: str | None = None
    ) -> UserInfo:
        """Change a user's role and/or password (admins; the last admin stays one)."""
        return self._driver.run(calls.change_user(name, role, password))

    def remove_user(self, name: str) -> None:
        """Remove a user with their tokens and sessions (admins; not the last admin)."""
        self._driver.run(calls.delete(calls.USERS, name))

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
        steps = calls.audit(page, per_page, actor, action, outcome, since, until, search)
        return self._driver.run(steps)
