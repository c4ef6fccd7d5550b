"""The database restarts under a running server: it reconnects by itself and loses nothing.

The test owns a PostgreSQL server of its own (``private_postgres``,
:mod:`tests.pgprivate`), so that it can stop and start it without touching the
server other tests share.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.cluster import Cluster
from tests.faults.invariants import holders
from tests.harness import ADMIN, Server, Sse, read_sse, wait_for
from tests.pgprivate import PrivatePostgres

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

OUTAGE = 3.0  # seconds the database stays down
LINES, PAUSE = 100, 0.1  # each job prints a numbered line every PAUSE seconds
JOBS = 4


class StreamReader(threading.Thread):
    """Reads a stream of the API in the background: ``GET /api/v1/events`` until every
    one of ``jobs`` has ended, or a job's stream (``path``, no ``jobs``) to its close."""

    def __init__(
        self,
        url: str,
        jobs: set[int] | None = None,
        headers: dict[str, str] | None = None,
        path: str = "/api/v1/events",
    ) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.jobs = jobs
        self.headers = headers or {}
        self.path = path
        self.events: list[Sse] = []
        self.error: BaseException | None = None

    def ended(self) -> set[int]:
        ended = {e.data["job_id"] for e in self.events if e.event == "job_terminated"}
        return ended & (self.jobs or set())

    def _stops(self, event: Sse) -> bool:
        return event.event == "close" if self.jobs is None else self.ended() == self.jobs

    def run(self) -> None:
        timeout = httpx.Timeout(10, read=None)
        try:
            with (
                httpx.Client(base_url=self.url, timeout=timeout, auth=ADMIN) as client,
                client.stream("GET", self.path, headers=self.headers) as response,
            ):
                assert response.status_code == 200
                for event in read_sse(response.iter_lines(), stop=self._stops):
                    self.events.append(event)  # seen by the test as they come
        except BaseException as exc:  # reported by the test
            self.error = exc


def api_answers(server: Server) -> bool:
    try:
        return server.client.get("/api/v1/jobs", params={"per_page": 1}).status_code == 200
    except httpx.TransportError:
        return False


def refused(server: Server) -> httpx.Response | None:
    """The API's answer while the database is down: 503 problem details."""
    response = server.client.get("/api/v1/jobs", params={"per_page": 1})
    return response if response.status_code == 503 else None


def test_a_database_restart_loses_no_job_line_or_event(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    # A stream pings (and looks whether its job is still stored) every second: one of a
    # held job does so during the outage.
    env = {"JOBYARD_CONCURRENCY": str(JOBS), "JOBYARD_STREAM_RECHECK": "1s"}
    server = Server(database_url=private_postgres.url, workdir=tmp_path, env=env).start()
    try:
        args = {"count": LINES, "pause": PAUSE}
        ids = {server.submit("tick", args=args)["id"] for _ in range(JOBS)}
        held = server.submit("echo", args={"text": "held through it"}, hold=True)["id"]
        quiet = StreamReader(server.url, path=f"/api/v1/jobs/{held}/events")
        quiet.start()

        def printing() -> bool:  # every job running and well into its output
            return all(server.job(i)["state"] == "running" for i in ids) and all(
                len(server.logs(i)) > 10 for i in ids
            )

        wait_for(printing, timeout=60, what="every job to print")
        seen = server.stream("/api/v1/events", limit=2 * JOBS)  # created, running
        last_id = seen[-1].id
        assert last_id is not None
        live = StreamReader(server.url, ids)  # stays connected through the outage
        live.start()
        wait_for(lambda: len(live.events) >= 2 * JOBS, timeout=30, what="the live stream")

        ready = httpx.get(f"{server.url}/readyz", timeout=10)  # no credentials needed
        assert (ready.status_code, ready.json()) == (
            200,
            {"status": "ready", "database": "postgresql"},
        )

        private_postgres.stop()
        down = time.monotonic()
        outage = wait_for(lambda: refused(server), timeout=30, what="the API to notice")
        assert outage.headers["content-type"] == "application/problem+json"
        assert outage.headers["retry-after"] == "1"
        unready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert unready.status_code == 503
        assert unready.headers["content-type"] == "application/problem+json"
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200  # alive all along
        health = subprocess.run(
            [sys.executable, "-m", "jobyard", "health", "--server", server.url],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert health.returncode == 1, health.stderr  # degraded, not "ok"
        assert "not ready: the database" in health.stderr  # did not answer, or is unavailable
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - down)))  # the outage itself
        assert server.proc is not None
        assert server.proc.poll() is None, server.log()  # the server rides the outage out
        private_postgres.start()

        wait_for(lambda: api_answers(server), timeout=60, what="the API to answer again")
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
        # The held job's stream, idle through the outage, is still open: its look at the
        # job during the outage ended it with the database's error (a traceback).
        assert quiet.is_alive()
        assert server.client.post(f"/api/v1/jobs/{held}/start").status_code == 200
        quiet.join(timeout=60)
        assert quiet.error is None, quiet.error
        assert [e.data.get("state") for e in quiet.events if e.event in ("state", "close")][
            -2:
        ] == ["succeeded", "succeeded"]
        assert "Exception in ASGI application" not in server.log()
        for job_id in ids:
            server.wait_state(job_id, "succeeded", "failed", "killed", timeout=120)
        after = server.submit("echo", args={"text": "after the restart"})
        assert server.wait_state(after["id"], "succeeded", "failed", timeout=60)["exit_code"] == 0

        for job_id in ids:
            job = server.job(job_id)
            assert job["state"] == "succeeded", (job, server.log())
            assert job["attempt"] == 1  # neither killed nor retried by the outage
            states = [e.data["state"] for e in server.stream(f"/api/v1/jobs/{job_id}/events")
                      if e.event == "state"]  # fmt: skip
            assert states == ["queued", "running", "succeeded"]
            lines = server.logs(job_id)
            assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
            printed = [line["line"] for line in lines if line["stream"] == "stdout"]
            assert printed == [f"tick {i}" for i in range(LINES)]

        resumed = StreamReader(server.url, ids, headers={"Last-Event-ID": str(last_id)})
        resumed.start()
        resumed.join(timeout=60)
        live.join(timeout=60)
        for reader in (resumed, live):
            assert reader.error is None, reader.error
            assert reader.ended() == ids
            event_ids = [e.id for e in reader.events if e.id is not None]
            assert event_ids == sorted(set(event_ids))  # in order, none twice
        assert all(e.id is not None and e.id > last_id for e in resumed.events)
        terminal = {e.data["job_id"]: e.data["state"] for e in resumed.events
                    if e.event == "job_terminated" and e.data["job_id"] in ids}  # fmt: skip
        assert terminal == dict.fromkeys(ids, "succeeded")
    finally:
        server.stop()


def gone(pid: int) -> bool:
    """The process exited (a zombie not yet reaped counts: it runs no more)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_jobs_that_end_while_the_database_is_down_keep_every_line(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    jobs, count = 8, 30  # each job prints for about 3 s: it ends during the outage
    env = {"JOBYARD_CONCURRENCY": str(jobs)}
    server = Server(database_url=private_postgres.url, workdir=tmp_path, env=env).start()
    try:
        args = {"count": count, "pause": 0.1}
        ids = [server.submit("tick", args=args)["id"] for _ in range(jobs)]

        def started() -> list[int] | None:  # every job running, with a line stored
            found = [server.job(i) for i in ids]
            if all(job["state"] == "running" and job["pid"] for job in found) and all(
                len(server.logs(i)) > 1 for i in ids
            ):
                return [job["pid"] for job in found]
            return None

        pids = wait_for(started, timeout=60, what="every job to print")
        private_postgres.stop()
        down = time.monotonic()
        wait_for(lambda: all(gone(pid) for pid in pids), timeout=30, what="every job to end")
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - down)))  # the outage itself
        private_postgres.start()

        wait_for(lambda: api_answers(server), timeout=60, what="the API to answer again")
        for job_id in ids:
            job = server.wait_state(job_id, "succeeded", "failed", "killed", timeout=60)
            assert job["state"] == "succeeded", (job, server.log())
            assert job["attempt"] == 1
            lines = server.logs(job_id)
            assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))  # once each
            printed = [line["line"] for line in lines if line["stream"] == "stdout"]
            assert printed == [f"tick {i}" for i in range(count)]
            assert job["resources"]["log_lines"] == len(lines)
    finally:
        server.stop()


def test_a_worker_stopped_while_the_database_is_away_names_the_jobs_it_could_not_hand_back(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    env = {"JOBYARD_DRAIN_TIMEOUT": "0", "JOBYARD_KILL_GRACE": "1"}
    with Cluster(private_postgres.url, tmp_path, workers=0, env=env) as cluster:
        worker = cluster.add_worker("stopped-in-an-outage")
        cluster.wait_registered()
        job_id = cluster.api.submit("gate", args={"path": str(tmp_path / "never")})["id"]
        token = f"{worker.name}:{job_id}:1"
        wait_for(lambda: token in holders([token]).values(), what="the job's processes")

        private_postgres.stop()
        try:
            code = worker.terminate(timeout=60)
        finally:
            private_postgres.start()
        told = "jobs not handed back, the database did not answer: "
        assert code == 1, worker.log()
        assert f"jobyard: error: {told}{job_id} " in worker.log()
        assert token not in holders([token]).values()  # its processes were stopped all the same
        job = cluster.api.wait_state(job_id, "running", "queued", "scheduled", timeout=60)
        assert job["attempt"] == 1  # the hand-back never reached the database
