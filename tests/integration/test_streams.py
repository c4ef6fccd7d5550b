"""Server-Sent Events from a real server: follow, resume, logs, the global stream."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobyard.events.hub import Filter, Hub, follow
from jobyard.events.records import LogWritten
from jobyard.models import JobSpec, NewJob
from jobyard.states import JobState
from jobyard.store import Store
from tests.harness import Launcher, Server, read_sse, shared_server, wait_for

server = shared_server()


def test_a_job_is_followed_from_submit_to_close(server: Server) -> None:
    body = {"type": "lines", "args": {"count": 20}, "follow": True}
    events = server.stream("/api/v1/jobs", method="POST", json_body=body)
    assert events[0].event == "state"
    assert events[0].data["state"] == "queued"
    job_id = events[0].data["job_id"]
    assert events[-1].event == "close"
    assert events[-1].data == {"job_id": job_id, "state": "succeeded"}
    states = [e.data["state"] for e in events if e.event == "state"]
    assert states == ["queued", "running", "succeeded"]
    stdout = [e.data["line"] for e in events if e.event == "log" and e.data["stream"] == "stdout"]
    assert stdout == [f"line {i}" for i in range(20)]
    ids = [e.id for e in events[:-1]]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    # a stream opened on the finished job replays the same history, then closes
    replay = server.stream(f"/api/v1/jobs/{job_id}/events")
    assert [e.id for e in replay] == [e.id for e in events]
    assert replay[-1].event == "close"


def test_accept_event_stream_also_follows(server: Server) -> None:
    events = server.stream(
        "/api/v1/jobs",
        method="POST",
        json_body={"type": "echo", "args": {"text": "hi"}},
        headers={"accept": "text/event-stream"},
    )
    assert [e.data["line"] for e in events if e.event == "log"][-1] == "hi"
    assert events[-1].event == "close"


def test_a_cut_stream_resumes_with_last_event_id_losing_nothing(server: Server) -> None:
    job = server.submit("tick", args={"count": 30, "pause": 0.05})
    first = server.stream(f"/api/v1/jobs/{job['id']}/events", limit=8)
    assert len(first) == 8
    last_id = first[-1].id
    assert last_id is not None
    rest = server.stream(
        f"/api/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": str(last_id)}
    )
    assert rest[-1].event == "close"
    received = [e.id for e in first + rest[:-1]]
    stored = [e.id for e in server.stream(f"/api/v1/jobs/{job['id']}/events")[:-1]]
    assert received == stored
    ticks = [
        e.data["line"] for e in first + rest if e.event == "log" and e.data["stream"] == "stdout"
    ]
    assert ticks == [f"tick {i}" for i in range(30)]
    # ?after= is the same as the header
    after = server.stream(f"/api/v1/jobs/{job['id']}/events?after={last_id}")
    assert [e.id for e in after] == [e.id for e in rest]


def test_logs_follow_streams_only_lines(server: Server) -> None:
    job = server.submit("tick", args={"count": 10, "pause": 0.02})
    events = server.stream(f"/api/v1/jobs/{job['id']}/logs?follow=true")
    assert {e.event for e in events[:-1]} == {"log"}
    assert events[-1].event == "close"
    ticks = [e.data["line"] for e in events if e.event == "log" and e.data["stream"] == "stdout"]
    assert ticks == [f"tick {i}" for i in range(10)]
    seqs = [e.data["seq"] for e in events[:-1]]
    later = server.stream(f"/api/v1/jobs/{job['id']}/logs?follow=true&after={seqs[4]}")
    assert [e.data["seq"] for e in later[:-1]] == seqs[5:]


def test_stream_errors_come_before_the_stream(server: Server) -> None:
    missing = server.client.get("/api/v1/jobs/999999/events")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert server.client.get("/api/v1/jobs/999999/logs?follow=true").status_code == 404
    job = server.submit("echo", args={"text": "x"}, hold=True)
    bad = server.client.get(
        f"/api/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "yesterday"}
    )
    assert bad.status_code == 400
    assert "Last-Event-ID" in bad.json()["detail"]


def test_the_global_stream_tells_of_every_job(server: Server) -> None:
    collected: list = []
    ready = threading.Event()
    mark = server.last_event_id()  # the server is shared: what earlier tests did is before it

    def listen() -> None:
        with server.client.stream("GET", f"/api/v1/events?type=echo&after={mark}") as response:
            ready.set()
            for event in read_sse(
                response.iter_lines(), stop=lambda e: e.event == "job_terminated"
            ):
                collected.append(event)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(10)
    wait_for(lambda: server.subscribers() >= 1)
    server.submit("lines", args={"count": 1})  # another type: filtered out
    job = server.submit("echo", args={"text": "global"})
    thread.join(30)
    assert not thread.is_alive()
    kinds = [e.event for e in collected]
    assert kinds[0] == "job_created"
    assert kinds[-1] == "job_terminated"
    assert "job_state" in kinds
    assert {e.data["job_id"] for e in collected} == {job["id"]}
    assert all(e.data["type"] == "echo" for e in collected)
    end = collected[-1].data
    assert end["state"] == "succeeded"
    assert end["exit_code"] == 0
    assert end["runtime_seconds"] >= 0
    # resuming the global stream from an id replays what came after it
    resumed = server.stream(
        f"/api/v1/events?job={job['id']}&after={collected[0].id}",
        limit=len(collected) - 1,
    )
    assert [e.id for e in resumed] == [e.id for e in collected[1:]]


def test_disconnected_streams_free_their_subscription(server: Server) -> None:
    wait_for(lambda: server.subscribers() == 0, what="earlier tests' streams to be freed")
    job = server.submit("sleep", args={"seconds": 60})
    streams, readers = [], []
    for _ in range(3):
        stream = server.client.stream("GET", f"/api/v1/jobs/{job['id']}/events")
        lines = stream.__enter__().iter_lines()
        assert next(lines).startswith("event:")
        streams.append(stream)
        readers.append(lines)  # a dropped line iterator would close its response
    wait_for(lambda: server.subscribers() == 3)
    for stream in streams:
        stream.__exit__(None, None, None)
    wait_for(lambda: server.subscribers() == 0)
    server.act(job["id"], "kill")


def test_a_subscriber_that_falls_behind_catches_up_from_the_database(tmp_path: Path) -> None:
    """The hub drops a full queue; the stream reads the gap back: every event, once, in order."""
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    store.migrate()
    now = datetime.now(UTC)
    new = NewJob("t", {}, JobSpec(argv=["true"]), "default", 0, JobState.QUEUED)
    ((job, _),) = store.jobs.add_jobs([new], now)
    hub = Hub(store, poll_interval=0.01, queue_limit=5)
    hub.start()

    async def consume() -> list[int]:
        seen: list[int] = []
        async for item in follow(hub, Filter(job_id=job.id, kinds=("log",)), 0, idle=0.5):
            if item is None:
                break
            assert isinstance(item.event.record, LogWritten)
            seen.append(item.event.record.seq)
            if len(seen) == 1:  # stall while the worker writes 300 more lines
                await asyncio.to_thread(write_lines, 2, 301)
                await asyncio.sleep(0.3)
        return seen

    def write_lines(first: int, last: int) -> None:
        for start in range(first, last + 1, 10):
            lines = [
                LogWritten(at=now, seq=s, stream="stdout", line=f"l{s}")
                for s in range(start, min(start + 10, last + 1))
            ]
            store.jobs.append_output(job.id, lines, [], {})

    write_lines(1, 1)
    try:
        seen = asyncio.run(consume())
    finally:
        hub.stop()
        store.close()
    assert seen == list(range(1, 302))


def test_a_hundred_thousand_lines_arrive_complete_and_in_order(server: Server) -> None:
    count = 100_000
    body = {"type": "flood", "args": {"count": count}, "follow": True}
    events = server.stream("/api/v1/jobs", method="POST", json_body=body)
    assert events[-1].data["state"] == "succeeded"
    lines = [e.data["line"] for e in events if e.event == "log" and e.data["stream"] == "stdout"]
    assert len(lines) == count
    assert lines == [f"line {i}" for i in range(count)]
    job_id = events[0].data["job_id"]
    stored: list[str] = []
    after = 0
    while page := server.logs(job_id, after=after, limit=10_000):
        stored += [item["line"] for item in page if item["stream"] == "stdout"]
        after = page[-1]["seq"]
    assert stored == lines


def test_replays_of_a_long_log_at_once_each_get_every_event_once_in_order(
    server: Server,
) -> None:
    """Replays go out a read at a time, encoded ahead in the reading threads (a few at
    once) into the cache the streams of a job share: each still gets every event of the
    job once, in order, however the reads of the streams interleave."""
    count = 2_500  # several reads of the history each
    job = server.submit("flood", args={"count": count})
    server.wait_state(job["id"], "succeeded")
    path = f"/api/v1/jobs/{job['id']}/events"
    found: list[list[Any]] = [[] for _ in range(4)]

    def replay(into: list[Any], after: int) -> None:
        into += server.stream(path, headers={"Last-Event-ID": str(after)})

    threads = [
        threading.Thread(target=replay, args=(into, after))
        for into, after in zip(found, (0, 0, 0, 1500), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    whole, *others = found
    assert [(e.event, e.data["state"]) for e in whole[-2:]] == [
        ("state", "succeeded"),
        ("close", "succeeded"),
    ]
    ids = [int(e.id) for e in whole if e.id is not None]
    assert ids == sorted(set(ids))
    lines = [e.data["line"] for e in whole if e.event == "log" and e.data["stream"] == "stdout"]
    assert lines == [f"line {i}" for i in range(count)]
    for other in others[:2]:
        assert [(e.id, e.event, e.data) for e in other] == [(e.id, e.event, e.data) for e in whole]
    resumed = others[2]
    assert [e.id for e in resumed] == [e.id for e in whole if e.id is None or int(e.id) > 1500]


def test_the_log_cap_keeps_the_oldest_and_newest_lines(database_url: str, launch: Launcher) -> None:
    """30,000 lines (319 kB) under a 40 kB cap: the tail is trimmed many times over, to
    its newest half (within a 256th of it). The last trim is written after the job's end:
    the log is read until it is in."""
    server = launch(database_url, env={"JOBYARD_LOG_CAP": "40000"})
    job = server.submit("flood", args={"count": 30_000})
    server.wait_state(job["id"], "succeeded")

    def read() -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        after = 0
        while page := server.logs(job["id"], after=after, limit=10_000):
            lines += page
            after = page[-1]["seq"]
        return lines

    def tail(lines: list[dict[str, Any]]) -> int:
        marker = next(item["seq"] for item in lines if "log cap" in item["line"])
        return sum(len(item["line"]) + 1 for item in lines if item["seq"] > marker)

    def trimmed() -> list[dict[str, Any]] | None:
        found = read()
        return found if tail(found) <= 20_000 else None

    lines = wait_for(trimmed, what="the last trim")
    markers = [item for item in lines if "log cap" in item["line"]]
    assert len(markers) == 1
    assert "dropped here" in markers[0]["line"]
    stdout = [item["line"] for item in lines if item["stream"] == "stdout"]
    assert stdout[0] == "line 0"
    assert stdout[-1] == "line 29999"
    assert sum(len(line) + 1 for line in stdout) <= 40_000
    assert tail(lines) > 20_000 - 20_000 // 256 - 11  # the newest half, within a chunk
    kept = [int(line.split()[1]) for line in stdout]
    assert kept == sorted(kept)
    assert server.job(job["id"])["resources"]["output_bytes"] > 300_000  # all counted
