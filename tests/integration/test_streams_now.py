"""The global event stream "from now": a long history is not replayed to a new subscriber."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from tests.harness import Server, Sse, read_sse, shared_server, wait_for

server = shared_server()
HISTORY = 3000  # three reads of the feed's batch, were they replayed


def held_jobs(server: Server, count: int) -> list[int]:
    """``count`` held jobs (one ``job_created`` event each), in batches of 1,000."""
    ids: list[int] = []
    for start in range(0, count, 1000):
        jobs = [{"type": "echo", "args": {"text": "old"}, "hold": True}] * min(1000, count - start)
        response = server.client.post("/api/v1/jobs/batch", json={"jobs": jobs}, timeout=120)
        assert response.status_code == 201, response.text
        ids += response.json()["ids"]
    return ids


def first_block(lines: Iterator[str]) -> list[str]:
    """The lines of the stream's first message, up to the blank line that ends it."""
    block = []
    for line in lines:
        if not line:
            return block
        block.append(line)
    raise AssertionError("the stream ended before its first message")


def test_from_now_sends_only_what_comes_next_however_long_the_history(server: Server) -> None:
    held_jobs(server, HISTORY)
    newest = server.last_event_id()
    assert newest >= HISTORY
    collected: list[Sse] = []
    opening: list[str] = []
    ready = threading.Event()

    def listen() -> None:
        with server.client.stream("GET", "/api/v1/events?from=now") as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            opening.extend(first_block(lines))
            ready.set()
            for event in read_sse(lines, stop=lambda e: e.event == "job_created"):
                collected.append(event)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(30)
    # a message of an id alone: the place a reconnection resumes from, no event
    assert opening == [": from now", f"id: {newest}"]
    wait_for(lambda: server.subscribers() >= 1, what="the stream's subscription")
    new = server.submit("echo", args={"text": "new"}, hold=True)
    thread.join(30)
    assert not thread.is_alive()
    assert [(e.event, e.data["job_id"]) for e in collected] == [("job_created", new["id"])]
    assert (collected[0].id or 0) > newest
    # resuming from the id of the opening message loses nothing
    resumed = server.stream(
        "/api/v1/events?from=now", headers={"Last-Event-ID": str(newest)}, limit=1
    )
    assert [e.id for e in resumed] == [collected[0].id]


def test_without_from_now_the_stream_replays_from_the_first_event(server: Server) -> None:
    held_jobs(server, 2)
    replay = server.stream("/api/v1/events", limit=1)
    oldest = server.client.get("/api/v1/jobs", params={"sort": "id", "per_page": 1}).json()
    assert (replay[0].event, replay[0].data["job_id"]) == ("job_created", oldest["items"][0]["id"])
    after = server.stream(f"/api/v1/events?from=now&after={replay[0].id}", limit=1)
    # ?after= wins over from=now, as Last-Event-ID does: the history comes
    assert (after[0].id or 0) > (replay[0].id or 0)


def test_a_bad_from_is_a_problem(server: Server) -> None:
    response = server.client.get("/api/v1/events", params={"from": "yesterday"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "from"


def test_the_client_reads_from_now(server: Server) -> None:
    from jobyard.client import Client

    got: list[int | None] = []

    def listen() -> None:
        with Client(server.url) as client:
            for event in client.all_events(type="echo", from_now=True):
                got.append(event.job_id)
                return

    # An earlier test's stream may still be giving its place back: counting from it
    # would race with it.
    wait_for(lambda: server.subscribers() == 0, what="the streams of the tests to be freed")
    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    wait_for(lambda: server.subscribers() > 0, what="the client's subscription")
    job = server.submit("echo", args={"text": "client"}, hold=True)
    thread.join(30)
    assert got == [job["id"]]


def test_a_stream_closed_after_its_opening_frees_its_place(server: Server) -> None:
    wait_for(lambda: server.subscribers() == 0, what="the streams of the tests to be freed")
    with server.client.stream("GET", "/api/v1/events?from=now") as response:
        assert first_block(response.iter_lines())[0] == ": from now"
    wait_for(lambda: server.subscribers() == 0, what="the closed stream to be freed")
