"""jobyard in its two shapes: embedded on SQLite, and an API node with two workers on PostgreSQL."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg
from tests.harness import ADMIN, free_port, wait_for

from bench.compare.system import PgScratch, System

CONFIG = """\
pass_env: [BENCH_STAMP_ADDR]  # where the job body reports that it ran
queues:
  default: {}
  commands: {}
  control: {}
job_types:
  bench-noop:
    python: bench.compare.body:noop
    params:
      key: {type: integer, required: true}
  bench-true:
    command: ["/bin/true"]
    queue: commands
  bench-sleep:
    command: ["sleep", "3600"]
    queue: control
    kill_grace: 2s
"""
TERMINAL = ("succeeded", "failed", "killed")
BATCH = 1000  # the most jobs one POST /api/v1/jobs/batch takes


class Jobyard(System):
    """What both shapes share: the job types, the HTTP client, the queue switches."""

    anchor = False

    def __init__(self, workdir: Path, stamp_addr: str) -> None:
        super().__init__(workdir, stamp_addr)
        self.config = self.workdir / "jobyard.yaml"
        self.config.write_text(CONFIG)
        self.client: httpx.Client | None = None
        self.port = 0

    def jobyard(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "jobyard", *args, "--config", str(self.config)]

    def serve(self, role: str, database_url: str, *args: str) -> None:
        self.port = free_port()
        command = self.jobyard("serve", "--port", str(self.port), *args)
        command += ["--database-url", database_url, "--log-level", "warning"]
        self.launch(role, command, {"JOBYARD_ADMIN_PASSWORD": ADMIN[1]})
        url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=url, timeout=60, auth=ADMIN)
        wait_for(self._healthy, 60, what="jobyard to answer")

    def _healthy(self) -> bool:
        self.check_alive()
        assert self.client is not None
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def http(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self.client is not None
        response = self.client.request(method, path, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def submit(self, key: int) -> None:
        self.http("POST", "/api/v1/jobs", json={"type": "bench-noop", "args": {"key": key}})

    def submit_batch(self, jobs: list[dict[str, Any]]) -> None:
        for at in range(0, len(jobs), BATCH):
            self.http("POST", "/api/v1/jobs/batch", json={"jobs": jobs[at : at + BATCH]})

    def pause_queue(self, name: str, paused: bool = True) -> None:
        self.http("POST", f"/api/v1/queues/{name}/{'pause' if paused else 'resume'}")

    def state(self, job_id: int) -> str:
        state: str = self.http("GET", f"/api/v1/jobs/{job_id}")["state"]
        return state

    def close_client(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    # -- the database, read from outside ---------------------------------------
    def query(self, sql: str) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def completed(self) -> int | None:
        return int(self.query("SELECT count(*) FROM jobs WHERE state = 'succeeded'")[0][0])

    def ended_commands(self) -> tuple[int, float | None]:
        """How many ``bench-true`` jobs ended, and when the last one did (epoch seconds)."""
        rows = self.query(
            "SELECT count(*), max(finished_at) FROM jobs "
            f"WHERE type = 'bench-true' AND state IN {TERMINAL!r}"
        )
        count, last = rows[0]
        return int(count), None if last is None else _epoch(last)


def _epoch(value: Any) -> float:
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


class JobyardSqlite(Jobyard):
    name = "jobyard-sqlite"
    shape = "`jobyard serve --concurrency 2`: one process (API, scheduler, worker), SQLite"

    def prepare(self) -> None:
        self.db = self.workdir / "jobs.db"
        for path in self.workdir.glob("jobs.db*"):
            path.unlink()

    def start(self, workers: bool = True) -> None:
        # Without workers the embedded worker still runs: the queue is paused instead.
        self.serve("serve", f"sqlite:///{self.db}", "--concurrency", "2")
        if not workers:
            self.pause_queue("default")

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def cleanup(self) -> None:
        self.prepare()


class JobyardPostgres(Jobyard):
    name = "jobyard-postgres"
    shape = (
        "`jobyard serve --no-worker` + 2 x `jobyard worker --concurrency 1`, "
        "scratch PostgreSQL database"
    )

    def prepare(self) -> None:
        self.cleanup()
        self.pg = PgScratch("jobyard_compare")
        self.pg.create()
        self.roles.servers = self.pg.name
        self.url = self.pg.url.replace("postgresql://", "postgresql+psycopg://")

    def start(self, workers: bool = True) -> None:
        self.serve("api", self.url, "--no-worker")  # it migrates the database
        if workers:
            self.start_workers()

    def start_workers(self) -> None:
        for index in (1, 2):
            name = f"worker-{index}"
            command = self.jobyard("worker", "--name", name, "--concurrency", "1")
            self.launch(name, [*command, "--database-url", self.url, "--log-level", "warning"])

        def registered() -> bool:
            self.check_alive()
            names = {w["name"] for w in self.http("GET", "/api/v1/workers")["items"]}
            return {"worker-1", "worker-2"} <= names

        wait_for(registered, 60, interval=0.1, what="both workers to register")

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            return list(conn.execute(sql.encode()).fetchall())

    def xacts(self) -> int | None:
        return self.pg.xacts()

    def cleanup(self) -> None:
        if hasattr(self, "pg"):
            self.pg.drop()
