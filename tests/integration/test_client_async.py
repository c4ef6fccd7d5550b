"""The async client against a real server: the sync client's results, typed events, resumes.

Both clients run the same operations, so these tests check that the async
driver does their effects right: same answers as the sync client, streams that
survive cut connections (a proxy cuts them), errors, and the finer points with
a scripted transport (Last-Event-ID, polling where the server cannot stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from typing import Any

import anyio
import httpx
import pytest

from jobyard.client import (
    AsyncClient,
    Client,
    CloseEvent,
    Event,
    LogEvent,
    NotFound,
    ServerUnreachable,
    StateEvent,
    StreamReset,
    StreamUnavailable,
)
from tests.harness import Server, free_port
from tests.integration.test_client_stream import CLOSE, JOB, TICKER, Proxy, sse, state

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("client-async")
    server = Server(database_url=f"sqlite:///{workdir / 'jobs.db'}", workdir=workdir).start()
    server.client.put("/api/v1/job-types/ticker", json=TICKER).raise_for_status()
    yield server
    server.stop()


@pytest.fixture
def proxy(server: Server) -> Iterator[Proxy]:
    proxy = Proxy(server.port)
    yield proxy
    proxy.close()


def fast(url: str) -> AsyncClient:
    return AsyncClient(url, reconnect_delay=0.05, retries=3, poll_interval=0.05)


async def collect(events: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in events]


async def test_results_are_the_sync_clients(server: Server) -> None:
    async with fast(server.url) as client:
        job = await client.submit("lines", {"count": 3}, name="async-parity")
        done = await client.wait(job.id, timeout=60)
        with Client(server.url) as sync:
            assert done == sync.job(job.id)
            assert await client.logs(job.id) == sync.logs(job.id)
            assert await client.job_type("lines") == sync.job_type("lines")
            assert await client.me() == sync.me()
            assert await client.workflow("diamond") == sync.workflow("diamond")
            assert await client.notification_channels() == sync.notification_channels()
        assert done.state == "succeeded"
        key = f"async-parity-{job.id}"
        made, new = await client.submit_once("echo", {"text": "a"}, hold=True, idempotency_key=key)
        again, repeated = await client.submit_once(
            "echo", {"text": "a"}, hold=True, idempotency_key=key
        )
        assert (new, repeated, again.id) == (True, False, made.id)
        await client.kill(made.id)
        found = [item.id async for item in client.iter_jobs(search="async-parity", per_page=1)]
        assert found == [job.id]
        lines = [line.line async for line in client.iter_logs(job.id) if line.stream != "system"]
        assert sorted(lines) == sorted(
            [f"line {i}" for i in range(3)] + [f"err {i}" for i in range(3)]
        )


async def test_events_are_typed_and_end_with_close(server: Server) -> None:
    async with fast(server.url) as client:
        events = await collect(client.submit_and_follow("ticker", {"count": 5}))
    first, last = events[0], events[-1]
    assert isinstance(first, StateEvent)
    assert (first.state, first.marker) == ("queued", "created")
    assert isinstance(last, CloseEvent)
    assert last.state == "succeeded"
    logs = [event for event in events if isinstance(event, LogEvent) and event.stream == "stdout"]
    assert [event.line for event in logs] == [f"tick {i}" for i in range(5)]
    assert all(event.at is not None for event in events[:-1])
    assert first.data["state"] == "queued"  # the raw JSON is kept


async def test_a_cut_stream_resumes_losing_and_doubling_nothing(
    server: Server, proxy: Proxy
) -> None:
    async with fast(f"http://127.0.0.1:{proxy.port}") as client, fast(server.url) as direct:
        job = await client.submit("ticker", {"count": 30})
        received: list[Event] = []
        async for event in client.events(job.id):
            received.append(event)
            if len(received) in (4, 12, 25):
                proxy.cut()
        stored = await collect(direct.events(job.id))
        lines = await collect(direct.follow_logs(job.id))
    assert proxy.connections >= 4
    assert received == stored
    ticks = [e.line for e in received if isinstance(e, LogEvent) and e.stream == "stdout"]
    assert ticks == [f"tick {i}" for i in range(30)]
    assert [line.line for line in lines if line.stream == "stdout"] == ticks


async def test_the_global_stream_names_its_events_by_what_happened(server: Server) -> None:
    async with fast(server.url) as client:
        job = await client.submit("echo", {"text": "hello"})
        await client.wait(job.id, timeout=60)
        kinds: list[str] = []
        with anyio.fail_after(30):
            async with aclosing(client.all_events(job=job.id)) as events:
                async for event in events:
                    assert isinstance(event, StateEvent)
                    assert (event.job_id, event.type, event.queue) == (job.id, "echo", "default")
                    kinds.append(event.kind)
                    if event.terminal:
                        break
    assert kinds[0] == "job_created"
    assert kinds[-1] == "job_terminated"


async def test_errors_are_the_sync_clients(server: Server) -> None:
    async with fast(server.url) as client:
        with pytest.raises(NotFound):
            await client.job(10**9)
        with pytest.raises(NotFound):
            await collect(client.events(10**9))
        job = await client.submit("sleep", {"seconds": 30})
        with pytest.raises(TimeoutError):
            await client.wait(job.id, timeout=0.3)
        assert (await client.kill(job.id)).id == job.id
    async with fast(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(ServerUnreachable):
            await client.health()


# -- scripted transport ------------------------------------------------------------


def stream(body: bytes, *, then_break: bool = False) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield body
        if then_break:
            raise httpx.RemoteProtocolError("peer closed connection")

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=chunks())


Handler = Callable[[httpx.Request], httpx.Response]


def scripted(*responses: httpx.Response | Handler) -> tuple[AsyncClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    async def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return answer(request) if callable(answer) else answer

    client = AsyncClient(
        "http://jobyard.test",
        transport=httpx.MockTransport(handle),
        reconnect_delay=0.01,
        retries=2,
        poll_interval=0.01,
    )
    return client, seen


async def test_reconnection_sends_the_last_event_id_and_skips_repeats() -> None:
    client, seen = scripted(
        stream(sse(state(1, "queued"), state(2, "running")), then_break=True),
        stream(b": ping\n\n" + sse(state(2, "running"), state(3, "succeeded"), CLOSE)),
    )
    events = await collect(client.events(1))
    assert [(e.id, e.kind) for e in events] == [
        (1, "state"),
        (2, "state"),
        (3, "state"),
        (None, "close"),
    ]
    assert "last-event-id" not in seen[0].headers
    assert seen[1].headers["last-event-id"] == "2"


async def test_a_reset_raises_stream_reset() -> None:
    reset = (9, "reset", {"reason": "pruned", "pruned_through": 9, "resume_from": 9})
    client, _ = scripted(stream(sse(reset)))
    with pytest.raises(StreamReset) as raised:
        await collect(client.all_events(last_event_id=3))
    assert raised.value.event.data["pruned_through"] == 9


async def test_without_streams_events_are_made_up_by_polling() -> None:
    polls = iter(["queued", "queued", "running", "succeeded"])  # the first: does it exist?

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/events") or request.url.params.get("follow"):
            return httpx.Response(404, json={"status": 404, "detail": "Not Found"})
        if path.endswith("/logs"):
            after = int(request.url.params["after"])
            items = [{"seq": 1, "at": JOB["created_at"], "stream": "stdout", "line": "hi"}]
            body = {"items": items if after < 1 else [], "next_after": 1, "state": "succeeded"}
            return httpx.Response(200, json=body)
        return httpx.Response(200, json=JOB | {"state": next(polls, "succeeded")})

    client, _ = scripted(answer)
    events = await collect(client.events(1))
    assert [(e.kind, e.data.get("state") or e.data.get("line")) for e in events] == [
        ("state", "queued"),
        ("log", "hi"),
        ("state", "running"),
        ("state", "succeeded"),
        ("close", "succeeded"),
    ]
    assert isinstance(events[1], LogEvent)
    assert [line.line async for line in client.follow_logs(1)] == ["hi"]
    assert (await client.wait(1)).state == "succeeded"
    with pytest.raises(StreamUnavailable):
        await collect(client.all_events())


async def test_a_run_is_followed_to_its_end(server: Server) -> None:
    async with fast(server.url) as client:
        started = await client.start_run("diamond")
        told = await collect(client.follow_run(started["id"]))
        assert told[-1] == await client.run(started["id"])
        assert told[-1]["state"] == "succeeded"
        assert all(run["state"] == "running" for run in told[:-1])
        assert await client.wait_run(started["id"], timeout=60) == told[-1]
