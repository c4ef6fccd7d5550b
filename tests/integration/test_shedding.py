"""Load shedding on a real server with small limits: 503 + Retry-After past them, then recovery."""

from __future__ import annotations

import socket
from collections import Counter

import anyio
import httpx
import pytest

from tests.harness import ADMIN, Launcher, Server, wait_for

pytestmark = pytest.mark.slow
LIMITS = {"JOBYARD_MAX_REQUESTS": "3", "JOBYARD_MAX_STREAMS": "2"}


@pytest.fixture
def server(launch: Launcher, sqlite_url: str) -> Server:
    return launch(sqlite_url, env=LIMITS)


def test_a_burst_past_the_limit_is_shed_with_retry_after_and_the_server_recovers(
    server: Server,
) -> None:
    statuses = anyio.run(_burst, server.url, 80)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] > 0
    assert statuses[503] > 0, "80 requests at once never went past a limit of 3"
    # Once the burst is over, every request is served again.
    for _ in range(10):
        assert server.client.get("/api/v1/jobs").status_code == 200
    metrics = server.client.get("/metrics").text
    shed = _sample(metrics, 'jobyard_requests_shed_total{kind="requests"}')
    assert shed == statuses[503]


def test_streams_past_their_limit_are_refused_but_healthz_is_not(server: Server) -> None:
    job = server.submit("sleep", args={"seconds": 60})
    path = f"/api/v1/jobs/{job['id']}/events"
    with (
        server.client.stream("GET", path) as first,
        server.client.stream("GET", "/api/v1/events") as second,
    ):
        assert first.status_code == second.status_code == 200
        wait_for(lambda: server.subscribers() == 2, what="both streams")
        refused = server.client.get(path)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["status"] == 503
        assert "2 streams" in refused.json()["detail"]
        assert server.client.get("/healthz").status_code == 200
        # Plain requests have their own limit: a full set of streams does not block them.
        assert server.client.get(f"/api/v1/jobs/{job['id']}").status_code == 200
    wait_for(lambda: server.subscribers() == 0, what="the streams to close")
    lines = server.stream(path.replace("/events", "/events?after=0"), limit=1)
    assert lines[0].event == "state"
    server.act(job["id"], "kill", expect=202)


async def _burst(url: str, count: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, auth=ADMIN, timeout=60, limits=limits) as client:

        async def one() -> None:
            response = await client.get("/api/v1/jobs", params={"per_page": 200})
            if response.status_code == 503:
                assert response.headers["retry-after"] == "1"
                assert response.json()["title"] == "Service Unavailable"
            statuses[response.status_code] += 1

        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(one)
    return statuses


def _first_job(server: Server) -> int:
    first: int = server.client.get("/api/v1/jobs", params={"sort": "id"}).json()["items"][0]["id"]
    return first


def _answer(sock: socket.socket) -> str:
    """An answer read whole off ``sock``: its head, then its JSON body."""
    received = b""
    while not received.endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {received!r}"
        received += chunk
    return received.decode()


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_stream_asked_in_the_body_holds_a_streams_place_and_a_query_only_says_so(
    server: Server,
) -> None:
    """A submit with ``"follow": true`` streams for the job's life: as a request it held
    one of the three places for requests all along. A query that only contains the
    words (a search for ``xfollow=true``) is a request, not a stream."""
    body = {"type": "sleep", "args": {"seconds": 60}, "follow": True}
    with (
        server.client.stream("POST", "/api/v1/jobs", json=body) as first,
        server.client.stream("POST", "/api/v1/jobs", json=body) as second,
    ):
        assert first.status_code == second.status_code == 201
        assert first.headers["content-type"].startswith("text/event-stream")
        wait_for(lambda: server.subscribers() == 2, what="both streams")
        for _ in range(5):  # the three places for requests are free
            assert server.client.get("/api/v1/jobs").status_code == 200
        searched = server.client.get("/api/v1/jobs", params={"search": "xfollow=true"})
        assert searched.status_code == 200, searched.text  # not refused as a third stream
        refused = server.client.get("/api/v1/events")
        assert refused.status_code == 503
        assert "2 streams" in refused.json()["detail"]
        # A third asked in the body: refused before its job is stored, not streamed past
        # the limit (it held a request's place until its answer began).
        stored = server.client.get("/api/v1/jobs").json()["total"]
        third = server.client.post("/api/v1/jobs", json=body)
        assert (third.status_code, third.headers["retry-after"]) == (503, "1")
        assert "2 streams" in third.json()["detail"]
        again = server.client.post(
            f"/api/v1/jobs/{_first_job(server)}/restart", json={"follow": True}
        )
        assert again.status_code == 503
        assert server.client.get("/api/v1/jobs").json()["total"] == stored
    for job in server.client.get("/api/v1/jobs", params={"state": "running"}).json()["items"]:
        server.act(job["id"], "kill", expect=202)


def test_a_body_that_drips_in_is_cut_off_and_frees_its_place(
    launch: Launcher, sqlite_url: str
) -> None:
    """Headers, then a byte of a hundred: without a deadline the request held its place for
    as long as the client liked, and three such took every place of the server."""
    server = launch(sqlite_url, env=LIMITS | {"JOBYARD_BODY_TIMEOUT": "8s"})
    head = (
        "POST /login HTTP/1.1\r\nHost: jobyard\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nu"
    )
    drips = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(3)]
    try:
        for sock in drips:
            sock.sendall(head.encode())
        # A new connection each time: one kept open is read at once, and its request could
        # come in between the drips', taking one's place (a drip refused, not held).
        wait_for(
            lambda: httpx.get(f"{server.url}/api/v1/jobs", auth=ADMIN).status_code == 503,
            what="the dripping bodies to take every place",
        )
        answers = [_answer(sock) for sock in drips]  # at the 8 s deadline
        for answer in answers:
            assert answer.startswith("HTTP/1.1 408 "), answer
            assert "did not arrive within 8 s" in answer
        assert server.client.get("/api/v1/jobs").status_code == 200
    finally:
        for sock in drips:
            sock.close()
