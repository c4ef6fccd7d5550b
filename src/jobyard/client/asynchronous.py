"""The asynchronous client: :class:`AsyncClient`, the same methods as :class:`Client`.

>>> async with AsyncClient("http://127.0.0.1:8000") as client:   # doctest: +SKIP
...     job = await client.submit("export", {"from_date": "2026-01-01"})
...     async for line in client.follow_logs(job.id):
...         print(line.line)
...     print((await client.wait(job.id)).state)

Its methods have the names, arguments and typed results of the sync client's;
the ones that return results are coroutines, the ones that return iterators
(``iter_jobs``, ``iter_logs``, ``follow_logs``, ``events``, ``all_events``,
``submit_and_follow``) return async generators: ``async for``, and ``aclose()``
(or :func:`contextlib.aclosing`) to close a stream left before its end. Both run the same operations
(:mod:`jobyard.client.calls`), so they build the same requests and parse the
same answers; only the driver that does the I/O differs (:mod:`.flow`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import httpx

from jobyard.client import calls
from jobyard.client.auth import credentials
from jobyard.client.calls import Names, Upstream, submission
from jobyard.client.events import Event
from jobyard.client.flow import AsyncDriver, Settings
from jobyard.client.models import (
    ActionResult,
    AuditPage,
    CreatedToken,
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
from jobyard.client.records import QueueInfo, Sample, ScheduleInfo
from jobyard.client.sync import DEFAULT_SERVER, Client
from jobyard.client.values import server_url

__all__ = ["AsyncClient"]

C = TypeVar("C", bound=type)


def _documented_as(model: type) -> Callable[[C], C]:
    """Give each method without a docstring the sync client's, so that both say the same."""

    def document(cls: C) -> C:
        for name, member in vars(cls).items():
            source = getattr(model, name, None)
            if callable(member) and not member.__doc__ and source is not None:
                member.__doc__ = source.__doc__
        return cls

    return document


@_documented_as(Client)
class AsyncClient:
    """An asynchronous client of one jobyard server (an async context manager).

    It takes the arguments of :class:`Client` (``transport`` an
    :class:`httpx.AsyncBaseTransport`).
    """

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        *,
        timeout: float = 30,
        transport: httpx.AsyncBaseTransport | None = None,
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
        self._http = httpx.AsyncClient(
            base_url=self.server,
            timeout=timeout,
            transport=transport,
            headers=headers,
            auth=credentials(token, auth, server=self.server),
        )
        self._driver = AsyncDriver(self._http, Settings(retries, reconnect_delay))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- jobs -----------------------------------------------------------------
    async def submit(
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
        body = submission(
            type, args, priority, queue, run_at, hold, name, idempotency_key, depends_on
        )
        return await self._driver.run(calls.submit(body))

    async def submit_once(
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
        body = submission(
            type, args, priority, queue, run_at, hold, name, idempotency_key, depends_on
        )
        return await self._driver.run(calls.submit_once(body))

    async def submit_many(self, jobs: Iterable[Mapping[str, Any]]) -> list[JobInfo]:
        return await self._driver.run(calls.submit_many(jobs))

    async def jobs(
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
        return await self._driver.run(
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
    ) -> AsyncGenerator[JobInfo, None]:
        steps = calls.iter_jobs(sort, search, state, type, queue, per_page, worker, since, until)
        return self._driver.iterate(steps)

    async def job(self, job_id: int) -> JobInfo:
        return await self._driver.run(calls.job(job_id))

    async def start(self, job_id: int) -> JobInfo:
        return await self._driver.run(calls.act(job_id, "start"))

    async def pause(self, job_id: int) -> JobInfo:
        return await self._driver.run(calls.act(job_id, "pause"))

    async def resume(self, job_id: int) -> JobInfo:
        return await self._driver.run(calls.act(job_id, "resume"))

    async def kill(self, job_id: int) -> JobInfo:
        return await self._driver.run(calls.act(job_id, "kill"))

    async def restart(self, job_id: int, args: Mapping[str, Any] | None = None) -> JobInfo:
        return await self._driver.run(calls.restart(job_id, args))

    async def remove(self, job_id: int, force: bool = False) -> None:
        await self._driver.run(calls.remove(job_id, force))

    async def act_many(
        self, action: str, ids: Iterable[int], *, force: bool = False
    ) -> list[ActionResult]:
        return await self._driver.run(calls.act_many(action, ids, force))

    # -- logs -----------------------------------------------------------------
    async def logs(self, job_id: int, after: int = 0, limit: int = 1000) -> LogPage:
        return await self._driver.run(calls.logs(job_id, after, limit))

    def iter_logs(self, job_id: int, after: int = 0) -> AsyncGenerator[LogLine, None]:
        return self._driver.iterate(calls.drain_logs(job_id, after))

    def follow_logs(self, job_id: int, after: int = 0) -> AsyncGenerator[LogLine, None]:
        return self._driver.iterate(calls.follow_logs(job_id, after, self.poll_interval))

    # -- events ---------------------------------------------------------------
    def events(self, job_id: int, last_event_id: int | None = None) -> AsyncGenerator[Event, None]:
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
    ) -> AsyncGenerator[Event, None]:
        steps = calls.all_events(type, queue, job, last_event_id, from_now)
        return self._driver.iterate(steps)

    def submit_and_follow(
        self, type: str, args: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncGenerator[Event, None]:
        steps = calls.submit_and_follow(type, args, options, self.poll_interval)
        return self._driver.iterate(steps)

    async def samples(self, job_id: int, attempt: int | None = None) -> list[Sample]:
        return await self._driver.run(calls.samples(job_id, attempt))

    async def wait(self, job_id: int, timeout: float | None = None) -> JobInfo:
        return await self._driver.run(calls.wait(job_id, timeout, self.poll_interval))

    # -- job types ------------------------------------------------------------
    async def job_types(self) -> list[JobTypeInfo]:
        return await self._driver.run(calls.job_types())

    async def job_type(self, name: str) -> JobTypeInfo:
        return await self._driver.run(calls.job_type("GET", name))

    async def create_job_type(self, definition: Mapping[str, Any]) -> JobTypeInfo:
        return await self._driver.run(calls.job_type("POST", "", definition))

    async def put_job_type(self, name: str, definition: Mapping[str, Any]) -> JobTypeInfo:
        return await self._driver.run(calls.job_type("PUT", name, definition))

    async def delete_job_type(self, name: str) -> None:
        await self._driver.run(calls.delete(calls.TYPES, name))

    # -- workflows ------------------------------------------------------------
    async def workflows(self) -> list[dict[str, Any]]:
        return await self._driver.run(calls.workflows())

    async def workflow(self, name: str) -> dict[str, Any]:
        return await self._driver.run(calls.workflow(name))

    async def start_run(
        self, workflow: str, args: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self._driver.run(calls.start_run(workflow, args))

    async def runs(
        self,
        workflow: str | None = None,
        state: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> dict[str, Any]:
        return await self._driver.run(calls.runs(workflow, state, page, per_page))

    async def run(self, run_id: int) -> dict[str, Any]:
        return await self._driver.run(calls.run(run_id))

    async def control_run(self, run_id: int, action: str) -> dict[str, Any]:
        return await self._driver.run(calls.run(run_id, action))

    def follow_run(self, run_id: int) -> AsyncGenerator[dict[str, Any], None]:
        return self._driver.iterate(calls.follow_run(run_id))

    async def wait_run(self, run_id: int, timeout: float | None = None) -> dict[str, Any]:
        return await self._driver.run(calls.wait_run(run_id, timeout))

    # -- queues and schedules -------------------------------------------------
    async def queues(self) -> list[QueueInfo]:
        return await self._driver.run(calls.queues())

    async def pause_queue(self, name: str) -> QueueInfo:
        return await self._driver.run(calls.queue_action(name, "pause"))

    async def resume_queue(self, name: str) -> QueueInfo:
        return await self._driver.run(calls.queue_action(name, "resume"))

    async def schedules(self) -> list[ScheduleInfo]:
        return await self._driver.run(calls.schedules())

    async def schedule(self, name: str) -> ScheduleInfo:
        return await self._driver.run(calls.schedule("GET", name))

    async def create_schedule(self, definition: Mapping[str, Any]) -> ScheduleInfo:
        return await self._driver.run(calls.create_schedule(definition))

    async def pause_schedule(self, name: str) -> ScheduleInfo:
        return await self._driver.run(calls.schedule("POST", name, "pause"))

    async def resume_schedule(self, name: str) -> ScheduleInfo:
        return await self._driver.run(calls.schedule("POST", name, "resume"))

    async def delete_schedule(self, name: str) -> None:
        await self._driver.run(calls.delete(calls.SCHEDULES, name))

    # -- workers --------------------------------------------------------------
    async def workers(self) -> list[WorkerStatus]:
        return await self._driver.run(calls.workers())

    async def worker(self, name: str) -> WorkerStatus:
        return await self._driver.run(calls.worker(name))

    async def forget_worker(self, name: str) -> None:
        await self._driver.run(calls.delete(calls.WORKERS, name))

    async def drain(self, name: str, timeout: str | float | None = None) -> WorkerStatus:
        return await self._driver.run(calls.drain(name, timeout))

    async def notifications(
        self,
        page: int = 1,
        per_page: int = 50,
        status: Names = None,
        event: Names = None,
        job: int | None = None,
        run: int | None = None,
    ) -> NotificationPage:
        return await self._driver.run(calls.notifications(page, per_page, status, event, job, run))

    async def notification_channels(self) -> dict[str, Any]:
        return await self._driver.run(calls.notification_channels())

    async def health(self) -> dict[str, Any]:
        return await self._driver.run(calls.health())

    async def ready(self) -> dict[str, Any]:
        return await self._driver.run(calls.ready())

    # -- access ---------------------------------------------------------------
    async def me(self) -> Me:
        return await self._driver.run(calls.me())

    async def change_password(self, current: str, new: str) -> None:
        await self._driver.run(calls.change_password(current, new))

    async def create_token(
        self, name: str, role: str | None = None, expires_in: str | float | None = "30d"
    ) -> CreatedToken:
        return await self._driver.run(calls.create_token(name, role, expires_in))

    async def tokens(self, all: bool = False) -> list[TokenInfo]:
        return await self._driver.run(calls.tokens(all))

    async def revoke_token(self, token_id: int) -> TokenInfo:
        return await self._driver.run(calls.revoke_token(token_id))

    async def users(self) -> list[UserInfo]:
        return await self._driver.run(calls.users())

    async def add_user(self, name: str, password: str, role: str = "viewer") -> UserInfo:
        return await self._driver.run(calls.add_user(name, password, role))

    async def change_user(
        self, name: str, *, role: str | None = None, password: str | None = None
    ) -> UserInfo:
        return await self._driver.run(calls.change_user(name, role, password))

    async def remove_user(self, name: str) -> None:
        await self._driver.run(calls.delete(calls.USERS, name))

    async def audit(
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
        steps = calls.audit(page, per_page, actor, action, outcome, since, until, search)
        return await self._driver.run(steps)
