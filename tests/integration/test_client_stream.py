"""The client's event streams survive dropped connections: every event, once.

A proxy between the client and a real server cuts the connections mid-stream;
a scripted transport checks the finer points (what is sent on reconnection,
bounded retries, polling where the server cannot stream).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from jobyard.client import (
    Client,
    Event,
    Forbidden,
    ServerUnreachable,
    StreamUnavailable,
    Unauthorized,
    calls,
)
from jobyard.client import stream as stream_module
from tests.harness import Server, wait_for

TICKER = {
    "description": "Print numbered lines, slowly",
    "command": [
        "python3",
        "-c",
        "import sys, time\nfor i in range(int(sys.argv[1])):\n"
        "    print('tick %d' % i, flush=True)\n    time.sleep(0.05)",
        "{count}",
    ],
    "params": {"count": {"type": "integer", "default": 20}},
}


class Proxy:
    """A TCP forwarder to ``port`` whose open connections can be cut at any time."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [downstream, upstream]
            self.connections += 1
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with source:  # each socket is the source of one pipe, which closes it
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    sink.sendall(data)
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Break every open connection, as a lost network would."""
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.sockets = []

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        self.listener.close()
        self.cut()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("client-stream")
    server = Server(database_url=f"sqlite:///{workdir / 'jobs.db'}", workdir=workdir).start()
    server.client.put("/api/v1/job-types/ticker", json=TICKER).raise_for_status()
    yield server
    server.stop()


@pytest.fixture
def proxy(server: Server) -> Iterator[Proxy]:
    proxy = Proxy(server.port)
    yield proxy
    proxy.close()


def via(proxy: Proxy) -> Client:
    return Client(f"http://127.0.0.1:{proxy.port}", reconnect_delay=0.05, retries=3)


def test_a_cut_job_stream_resumes_losing_and_doubling_nothing(server: Server, proxy: Proxy) -> None:
    with via(proxy) as client, Client(server.url) as direct:
        job = client.submit("ticker", {"count": 30})
        received = []
        for event in client.events(job.id):
            received.append(event)
            if len(received) in (4, 12, 25):
                proxy.cut()
        stored = list(direct.events(job.id))
    assert proxy.connections >= 4
    assert received == stored
    ticks = [e.data["line"] for e in received if e.kind == "log" and e.data["stream"] == "stdout"]
    assert ticks == [f"tick {i}" for i in range(30)]


def test_a_cut_submit_and_follow_resumes_on_the_job_stream(server: Server, proxy: Proxy) -> None:
    with via(proxy) as client, Client(server.url) as direct:
        before = direct.jobs(type="ticker").total
        received = []
        for event in client.submit_and_follow("ticker", {"count": 20}):
            received.append(event)
            if len(received) in (3, 10):
                proxy.cut()
        job_id = received[0].data["job_id"]
        assert received == list(direct.events(job_id))
        assert received[-1].data == {"job_id": job_id, "state": "succeeded"}
        assert direct.jobs(type="ticker").total == before + 1


def test_cut_log_and_global_streams_resume(server: Server, proxy: Proxy) -> None:
    with via(proxy) as client, Client(server.url) as direct:
        job = client.submit("ticker", {"count": 25})
        lines = []
        for line in client.follow_logs(job.id):
            lines.append(line)
            if len(lines) in (5, 15):
                proxy.cut()
        assert lines == list(direct.iter_logs(job.id))
        assert [x.line for x in lines if x.stream == "stdout"] == [f"tick {i}" for i in range(25)]

        def until_terminated(events: Iterator[Event], cut_at: int = 0) -> list[Event]:
            seen = []
            for event in events:
                seen.append(event)
                if len(seen) == cut_at:
                    proxy.cut()
                if event.kind == "job_terminated":
                    return seen
            raise AssertionError("the stream ended")

        seen = until_terminated(client.all_events(job=job.id, last_event_id=0), cut_at=2)
        assert seen == until_terminated(direct.all_events(job=job.id, last_event_id=0))
        assert [e.kind for e in seen] == ["job_created", "job_state", "job_terminated"]


def test_a_cut_run_stream_is_reopened_and_the_run_followed_to_its_end(
    server: Server, proxy: Proxy
) -> None:
    with via(proxy) as client, Client(server.url) as direct:
        run = client.start_run("crashy")  # its node b takes 3 s
        told = []
        for current in client.follow_run(run["id"]):
            told.append(current)
            if len(told) in (1, 2):  # before its first event, and after one
                proxy.cut()
        assert told[-1] == direct.run(run["id"])
    assert told[-1]["state"] == "succeeded"
    order = ["waiting", "queued", "running", "succeeded"]
    for name in ("a", "b", "c"):  # each node's states as told go forward only
        states = [order.index(r["nodes"][name]["state"]) for r in told]
        assert states == sorted(states), (name, told)
    assert proxy.connections >= 3  # the run's GET, then the stream twice at least


def test_a_server_gone_for_good_ends_the_stream_with_an_error(server: Server, proxy: Proxy) -> None:
    with via(proxy) as client:
        job = client.submit("sleep", {"seconds": 30})
        events = client.events(job.id)
        assert next(events).kind == "state"
        proxy.close()
        with pytest.raises(ServerUnreachable, match="reconnections failed"):
            list(events)
    server.act(job.id, "kill")


# -- scripted transport ------------------------------------------------------------


def sse(*events: tuple[int | None, str, dict[str, Any]]) -> bytes:
    out = []
    for event_id, kind, data in events:
        head = f"id: {event_id}\n" if event_id is not None else ""
        out.append(f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n")
    return "".join(out).encode()


def stream(body: bytes, *, then_break: bool = False) -> httpx.Response:
    def chunks() -> Iterator[bytes]:
        yield body
        if then_break:
            raise httpx.RemoteProtocolError("peer closed connection")

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=chunks())


Handler = Callable[[httpx.Request], httpx.Response]


def scripted(*responses: httpx.Response | Handler) -> tuple[Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return answer(request) if callable(answer) else answer

    client = Client(
        "http://jobyard.test",
        transport=httpx.MockTransport(handle),
        reconnect_delay=0.01,
        retries=2,
        poll_interval=0.01,
    )
    return client, seen


def state(event_id: int, value: str) -> tuple[int, str, dict[str, Any]]:
    return (event_id, "state", {"job_id": 1, "at": "2026-01-01T00:00:00+00:00", "state": value})


CLOSE = (None, "close", {"job_id": 1, "state": "succeeded"})
AT = "2026-01-01T00:00:00+00:00"
JOB: dict[str, Any] = {
    "id": 1,
    "type": "echo",
    "name": None,
    "kind": "command",
    "command": ["echo", "hi"],
    "python": None,
    "args": {"text": "hi"},
    "queue": "default",
    "priority": 0,
    "state": "queued",
    "control": None,
    "created_at": AT,
    "updated_at": AT,
    "run_at": None,
    "started_at": None,
    "finished_at": None,
    "attempt": 0,
    "max_attempts": 1,
    "restart_count": 0,
    "exit_code": None,
    "error": None,
    "reason": None,
    "progress": {"fraction": None, "message": None},
    "metrics": {},
    "resources": {"paused_seconds": 0.0, "output_bytes": 0, "log_lines": 0},
    "details": {},
    "worker": None,
    "host": None,
    "pid": None,
    "idempotency_key": None,
    "restarted_from": None,
    "restarted_as": None,
}


def test_reconnection_sends_the_last_event_id_and_skips_repeats() -> None:
    client, seen = scripted(
        stream(sse(state(1, "queued"), state(2, "running")), then_break=True),
        stream(b": ping\n\n" + sse(state(2, "running"), state(3, "succeeded"), CLOSE)),
    )
    events = list(client.events(1))
    assert [(e.id, e.kind) for e in events] == [
        (1, "state"),
        (2, "state"),
        (3, "state"),
        (None, "close"),
    ]
    assert "last-event-id" not in seen[0].headers
    assert seen[1].headers["last-event-id"] == "2"
    assert seen[0].headers["accept"] == "text/event-stream"


def test_a_stream_from_now_resumes_from_the_id_it_was_given() -> None:
    created = (41, "job_created", {"job_id": 7, "state": "queued"})
    client, seen = scripted(
        stream(b": from now\nid: 40\n\n", then_break=True),  # dropped before any event
        stream(sse(created)),
    )
    events = client.all_events(type="echo", from_now=True)
    assert [(e.id, e.kind) for e in [next(events)]] == [(41, "job_created")]
    assert seen[0].url.params["from"] == "now"
    assert "last-event-id" not in seen[0].headers
    assert seen[1].headers["last-event-id"] == "40"  # nothing between is lost


def test_a_denied_stream_raises_the_problem_and_does_not_reconnect() -> None:
    detail = "the token is unknown, expired or revoked"
    denied = (None, "denied", {"status": 401, "title": "Unauthorized", "detail": detail})
    client, seen = scripted(stream(sse(state(1, "queued"), denied)))
    events = client.events(1)
    assert next(events).id == 1
    with pytest.raises(Unauthorized, match="revoked"):
        next(events)
    assert len(seen) == 1
    forbidden = (None, "denied", {"status": 403, "detail": "this needs the viewer role"})
    client, seen = scripted(stream(sse(forbidden)))
    with pytest.raises(Forbidden, match="viewer role"):
        list(client.all_events())


def test_a_stream_ending_before_close_is_reopened() -> None:
    client, seen = scripted(
        stream(sse(state(5, "running"))), stream(sse(state(6, "succeeded"), CLOSE))
    )
    assert [e.id for e in client.events(1, last_event_id=4)] == [5, 6, None]
    assert [r.headers["last-event-id"] for r in seen] == ["4", "5"]


def test_server_errors_are_retried_a_bounded_number_of_times() -> None:
    client, seen = scripted(httpx.Response(503), stream(sse(state(1, "succeeded"), CLOSE)))
    assert [e.kind for e in client.events(1)] == ["state", "close"]
    assert len(seen) == 2

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client, seen = scripted(refuse)
    with pytest.raises(ServerUnreachable, match=r"cannot reach http://jobyard\.test: connection"):
        list(client.events(1))
    assert len(seen) == 1  # never reached: no use retrying

    client, seen = scripted(stream(sse(state(1, "running")), then_break=True), refuse)
    with pytest.raises(ServerUnreachable, match="2 reconnections failed"):
        list(client.events(1))
    assert len(seen) == 4  # the stream, then a first try and two retries


def test_a_server_whose_database_is_away_is_waited_for_beyond_the_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 503 says the server is there and its database is not, for now (a restart, a
    failover): it counted as a broken connection, so ``submit --wait`` and ``logs -f``
    gave up after 12 s of a database restart, saying the server could not be reached."""
    away = httpx.Response(503, headers={"Retry-After": "0"})
    job = httpx.Response(200, json=JOB)
    closing = stream(sse(state(1, "running"), CLOSE))
    client, seen = scripted(job, *[away] * 6, closing, *[away] * 4, job)
    monkeypatch.setattr(calls, "BUSY_REREAD_WAIT", 0.01)
    assert client.wait(1).id == 1  # the job read again after the close
    assert len(seen) == 13  # the job, six 503s (more than the 2 retries), the stream, four
    monkeypatch.setattr(stream_module, "BUSY_PATIENCE", 0.2)
    client, seen = scripted(away)
    with pytest.raises(ServerUnreachable, match=r"HTTP 503 \(the server answered so for 0\.2 s\)"):
        list(client.events(1))
    assert len(seen) > 3


def test_retry_field_sets_the_reconnection_delay() -> None:
    client, seen = scripted(
        stream(b"retry: 1\n" + sse(state(1, "running")), then_break=True),
        stream(sse(CLOSE)),
    )
    assert [e.kind for e in client.events(1)] == ["state", "close"]
    assert len(seen) == 2


def test_without_streams_events_are_made_up_by_polling() -> None:
    job = JOB
    polls = iter(["queued", "queued", "running", "succeeded"])  # the first: does it exist?

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/events") or request.url.params.get("follow"):
            return httpx.Response(404, json={"status": 404, "detail": "Not Found"})
        if path.endswith("/logs"):
            after = int(request.url.params["after"])
            items = [{"seq": 1, "at": job["created_at"], "stream": "stdout", "line": "hi"}]
            body = {"items": items if after < 1 else [], "next_after": 1, "state": "succeeded"}
            return httpx.Response(200, json=body)
        return httpx.Response(200, json=job | {"state": next(polls, "succeeded")})

    client, _ = scripted(answer)
    events = list(client.events(1))
    assert [(e.kind, e.data.get("state") or e.data.get("line")) for e in events] == [
        ("state", "queued"),
        ("log", "hi"),
        ("state", "running"),
        ("state", "succeeded"),
        ("close", "succeeded"),
    ]
    assert all(event.id is None for event in events)
    assert [line.line for line in client.follow_logs(1)] == ["hi"]
    assert client.wait(1).state == "succeeded"
    with pytest.raises(StreamUnavailable):
        next(client.all_events())


def test_a_submission_answered_without_a_stream_is_followed_by_its_job_stream() -> None:
    client, seen = scripted(
        httpx.Response(201, json=JOB), stream(sse(state(1, "queued"), state(2, "succeeded"), CLOSE))
    )
    assert [e.id for e in client.submit_and_follow("echo", {"text": "x"})] == [1, 2, None]
    assert seen[0].method == "POST"
    assert json.loads(seen[0].content)["idempotency_key"]
    assert seen[1].url.path == "/api/v1/jobs/1/events"


def test_a_dropped_submission_is_sent_again_with_the_same_key() -> None:
    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    client, seen = scripted(
        reset,
        stream(sse(state(1, "queued"), state(2, "succeeded"), CLOSE)),
    )
    key = uuid.uuid4().hex
    events = list(client.submit_and_follow("echo", {"text": "x"}, idempotency_key=key))
    assert [e.id for e in events] == [1, 2, None]
    assert [json.loads(r.content)["idempotency_key"] for r in seen] == [key, key]


def test_the_wait_is_bounded(server: Server) -> None:
    with Client(server.url) as client:
        job = client.submit("sleep", {"seconds": 30})
        wait_for(lambda: client.job(job.id).state == "running")
        with pytest.raises(TimeoutError):
            client.wait(job.id, timeout=0.3)
        client.kill(job.id)


RUN: dict[str, Any] = {
    "id": 7,
    "workflow": "w",
    "state": "running",
    "nodes": {"a": {"job_id": 1, "state": "running", "attempt": 1, "restarted_from": None}},
}
ENDED = RUN | {"state": "succeeded", "nodes": {"a": RUN["nodes"]["a"] | {"state": "succeeded"}}}


def test_a_run_is_followed_on_its_stream_reopened_where_it_broke() -> None:
    node = {"job_id": 1, "workflow_run": 7, "node": "a", "at": AT}
    client, seen = scripted(
        httpx.Response(200, json=RUN),
        stream(sse((10, "workflow_node_state", node | {"state": "running"})), then_break=True),
        stream(
            sse(
                (11, "workflow_node_state", node | {"state": "succeeded"}),
                (None, "close", {"run_id": 7, "state": "succeeded"}),
            )
        ),
        httpx.Response(200, json=ENDED),
    )
    moved = RUN | {"nodes": ENDED["nodes"]}  # from the event; the end is read anew
    assert list(client.follow_run(7)) == [RUN, moved, ENDED]
    run, events = "/api/v1/workflow-runs/7", "/api/v1/workflow-runs/7/events"
    assert [request.url.path for request in seen] == [run, events, events, run]
    assert seen[2].headers["Last-Event-ID"] == "10"


def test_without_a_run_stream_the_run_is_polled() -> None:
    client, seen = scripted(
        httpx.Response(200, json=RUN),
        httpx.Response(404, json={"status": 404, "detail": "Not Found"}),
        httpx.Response(200, json=ENDED),
    )
    assert client.wait_run(7) == ENDED
    run, events = "/api/v1/workflow-runs/7", "/api/v1/workflow-runs/7/events"
    assert [request.url.path for request in seen] == [run, events, run]
