"""PostgreSQL stopped for 10 s under load, then started: nothing acknowledged is lost.

A server on a private PostgreSQL (:mod:`tests.pgprivate`; the shared one is never
stopped) takes a steady stream of submissions and runs jobs that print slowly,
while a client follows the global event stream. The database goes away for
``OUTAGE`` seconds: submissions are refused with 503 (never another 5xx), the
server stays up, and once the database is back every job it acknowledged (201)
ends exactly once, with every line it printed, and the stream has each event id
once, in order.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from jobyard.events.records import LogWritten
from jobyard.store import Store
from tests.faults.invariants import check_jobs, in_order, lines_kept
from tests.harness import ADMIN, Server, read_sse, wait_for
from tests.pgprivate import PrivatePostgres

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

OUTAGE = 10.0  # seconds the database stays down
BEFORE, AFTER = 3.0, 3.0  # seconds of load on either side of the outage
EVERY = 0.1  # seconds between submissions
TICKS = {"count": 20, "pause": 0.05}  # each job prints 20 lines in about a second


class Submitter(threading.Thread):
    """Submits a ``tick`` job every ``EVERY`` seconds until stopped; keeps what was answered."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.acknowledged: list[int] = []
        self.statuses: list[int] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, auth=ADMIN, timeout=10) as client:
            while not self.stop.wait(EVERY):
                try:
                    response = client.post("/api/v1/jobs", json={"type": "tick", "args": TICKS})
                except httpx.TransportError:
                    continue  # no answer: not acknowledged
                self.statuses.append(response.status_code)
                if response.status_code == 201:
                    self.acknowledged.append(response.json()["id"])


class Follower(threading.Thread):
    """Follows ``GET /api/v1/events`` until it has seen ``wanted`` jobs end."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.wanted: set[int] | None = None  # set once submitting is over
        self.ended: set[int] = set()
        self.ids: list[int | None] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        timeout = httpx.Timeout(10, read=None)
        try:
            with (
                httpx.Client(base_url=self.url, timeout=timeout, auth=ADMIN) as client,
                client.stream("GET", "/api/v1/events", params={"from": "now"}) as response,
            ):
                assert response.status_code == 200
                for event in read_sse(response.iter_lines(), stop=lambda _: self.done()):
                    self.ids.append(event.id)
                    if event.event == "job_terminated":
                        self.ended.add(event.data["job_id"])
        except BaseException as exc:  # reported by the test
            self.error = exc

    def done(self) -> bool:
        return self.wanted is not None and self.wanted <= self.ended


def committed_lines(url: str, job_ids: list[int]) -> dict[int, list[LogWritten]]:
    """The log lines the store holds now: acknowledged, so they must survive."""
    store = Store(url)
    try:
        return {job_id: store.jobs.log_lines(job_id, limit=10_000) for job_id in job_ids}
    finally:
        store.close()


def test_ten_seconds_without_postgres_under_load_lose_nothing(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    env = {"JOBYARD_CONCURRENCY": "8"}
    server = Server(database_url=private_postgres.url, workdir=tmp_path, env=env).start()
    submitter, follower = Submitter(server.url), Follower(server.url)
    try:
        follower.start()
        wait_for(lambda: server.subscribers() >= 1, timeout=30, what="the follower")
        submitter.start()
        time.sleep(BEFORE)  # load before the outage (not a synchronisation)
        before = committed_lines(private_postgres.url, list(submitter.acknowledged))
        assert any(before.values()), "no job printed before the outage"

        private_postgres.stop()
        time.sleep(OUTAGE)  # the outage itself, under load
        assert server.proc is not None
        assert server.proc.poll() is None, server.log()  # the server rides it out
        private_postgres.start()
        taking = len(submitter.statuses)
        wait_for(lambda: 201 in submitter.statuses[taking:], timeout=30, what="submits again")
        time.sleep(AFTER)  # load after the outage
        submitter.stop.set()
        submitter.join(timeout=30)

        assert 503 in submitter.statuses  # the outage was seen
        assert set(submitter.statuses) <= {201, 503}, sorted(set(submitter.statuses))
        acknowledged = submitter.acknowledged
        follower.wanted = set(acknowledged)
        store = Store(private_postgres.url)
        try:
            history = check_jobs(store, acknowledged)  # each ends once; attempts agree
            for job_id in acknowledged:
                job = store.jobs.get_job(job_id)
                assert job is not None
                assert job.state.value == "succeeded", (job, server.log())
                lines_kept(store, job_id, before.get(job_id, []))
                printed = [
                    line.line for line in store.jobs.log_lines(job_id) if line.stream == "stdout"
                ]
                assert printed == [f"tick {i}" for i in range(TICKS["count"])], job_id
                assert len([e for e in history[job_id] if e.claim]) == 1  # never run twice
        finally:
            store.close()
        follower.join(timeout=60)
        assert follower.error is None, follower.error
        assert follower.done(), set(acknowledged) - follower.ended
        in_order(follower.ids)
    finally:
        submitter.stop.set()
        server.stop()
