"""A cluster for tests and benchmarks: API-only nodes and ``jobyard worker`` processes.

Every process is a real subprocess on one shared database, as in production:
``jobyard serve --no-worker`` for the API (and the scheduler, which recovers
the jobs of lost workers) and ``jobyard worker --name …`` for each worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import make_url, select

from jobyard.models import EventKind
from jobyard.store import Store
from jobyard.store.rows import load_json
from jobyard.store.tables import job_events
from tests.harness import CONFIG, Server, wait_for

BATCH = 1000  # the most jobs one POST /api/v1/jobs/batch takes
# Faster polling than the defaults (MariaDB has no NOTIFY), and no pre-started Python
# children: these clusters run command jobs, and twelve idle interpreters cost CPU.
BASE_ENV = {"JOBYARD_POLL_INTERVAL": "0.2", "JOBYARD_KILL_GRACE": "3", "JOBYARD_PYTHON_POOL": "0"}


@dataclass
class WorkerProcess:
    """A ``jobyard worker`` subprocess with its own name and log file."""

    name: str
    database_url: str
    workdir: Path
    concurrency: int = 4
    config: Path = CONFIG
    env: dict[str, str] = field(default_factory=dict)
    args: Sequence[str] = ()
    wrapper: Sequence[str] = ()  # runs the command, e.g. ``ip netns exec NAME``
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        command = [
            *self.wrapper,
            sys.executable, "-m", "jobyard", "worker",
            "--config", str(self.config),
            "--database-url", self.database_url,
            "--name", self.name,
            "--concurrency", str(self.concurrency),
            *self.args,
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=os.environ | BASE_ENV | self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def log_path(self) -> Path:
        return self.workdir / f"worker-{self.name}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM (a drain) and wait for the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """``kill -9``: no drain, no hand-back, no goodbye to the database."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.alive:
            try:
                self.terminate(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    """``api_nodes`` API-only nodes and ``workers`` worker processes on ``database_url``."""

    database_url: str
    workdir: Path
    workers: int = 3
    concurrency: int = 4
    api_nodes: int = 1
    env: dict[str, str] = field(default_factory=dict)
    worker_args: Sequence[str] = ()
    label_connections: bool = False  # PostgreSQL: application_name = the process's name
    apis: list[Server] = field(default_factory=list)
    procs: list[WorkerProcess] = field(default_factory=list)
    store: Store = field(init=False)

    def __post_init__(self) -> None:
        self.store = Store(self.database_url)

    @property
    def api(self) -> Server:
        return self.apis[0]

    def start(self) -> Cluster:
        # Workers first: they start while the API node does (each process takes seconds).
        for index in range(self.workers):
            self.add_worker(f"worker-{index + 1}")
        for index in range(self.api_nodes):
            server = Server(
                database_url=self.url_for(f"api-{index + 1}"),
                workdir=self.workdir,
                args=["--no-worker"],
                env=BASE_ENV | self.env,
            )
            self.apis.append(server.start())
        self.wait_registered()
        return self

    def add_worker(self, name: str) -> WorkerProcess:
        worker = WorkerProcess(
            name,
            self.url_for(name),
            self.workdir,
            self.concurrency,
            env=dict(self.env),
            args=self.worker_args,
        )
        self.procs.append(worker.start())
        return worker

    def url_for(self, name: str) -> str:
        """The database URL for the process ``name``."""
        if not self.label_connections:
            return self.database_url
        url = make_url(self.database_url).update_query_dict({"application_name": name})
        return url.render_as_string(hide_password=False)

    def wait_registered(self, timeout: float = 60) -> None:
        """Until every live worker has its row (it claims right after registering)."""

        def probe() -> bool:
            for worker in self.procs:
                if worker.proc is not None and worker.proc.poll() not in (None, 0, -9):
                    raise AssertionError(f"worker {worker.name} exited:\n{worker.log()}")
            names = {info.name for info in self.store.workers.list_workers()}
            return all(w.name in names for w in self.procs if w.alive)

        wait_for(probe, timeout, what="workers to register")

    def stop(self) -> None:
        for worker in self.procs:
            worker.stop()
        for server in self.apis:
            server.stop()
        self.store.close()

    def logs(self) -> str:
        """Every process's log, for a failure message."""
        parts = [server.log() for server in self.apis[:1]]
        parts += [f"--- {w.name}\n{w.log()}" for w in self.procs]
        return "\n".join(parts)

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- API shortcuts -----------------------------------------------------
    def submit_batch(self, jobs: Sequence[dict[str, Any]]) -> list[int]:
        """Submit through ``POST /api/v1/jobs/batch``, a thousand at a time; the new ids."""
        ids: list[int] = []
        for start in range(0, len(jobs), BATCH):
            chunk = list(jobs[start : start + BATCH])
            response = self.api.client.post("/api/v1/jobs/batch", json={"jobs": chunk})
            assert response.status_code == 201, response.text
            ids += response.json()["ids"]
        return ids

    def jobs(self, **filters: str) -> list[dict[str, Any]]:
        """Every job matching the filters, through the paginated list."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"page": page, "per_page": 500, "sort": "id", **filters}
            response = self.api.client.get("/api/v1/jobs", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            found += body["items"]
            if len(found) >= body["total"] or not body["items"]:
                return found
            page += 1

    def count(self, **filters: str) -> int:
        params = {"per_page": 1, **filters}
        response = self.api.client.get("/api/v1/jobs", params=params)
        assert response.status_code == 200, response.text
        total: int = response.json()["total"]
        return total


@dataclass(frozen=True)
class StateEvent:
    id: int
    at: datetime
    data: dict[str, Any]

    @property
    def state(self) -> str:
        state: str = self.data["state"]
        return state

    @property
    def claim(self) -> bool:
        """A worker took the job (a resume after a pause is a ``running`` event too)."""
        return self.state == "running" and not self.data.get("resumed")


def state_events(store: Store, job_ids: Iterable[int]) -> dict[int, list[StateEvent]]:
    """The stored ``state`` events of these jobs, oldest first, straight from the event log."""
    wanted = set(job_ids)
    query = (
        select(job_events.c.id, job_events.c.job_id, job_events.c.at, job_events.c.data)
        .where(job_events.c.kind == EventKind.STATE.value)
        .order_by(job_events.c.id)
    )
    events: dict[int, list[StateEvent]] = defaultdict(list)
    with store.engine.connect() as conn:
        for event_id, job_id, at, data in conn.execute(query):
            if job_id in wanted:
                events[job_id].append(StateEvent(event_id, at, dict(load_json(data))))
    return events


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def most_at_once(intervals: Iterable[tuple[datetime, datetime]]) -> int:
    """The largest number of intervals open at the same instant (an end frees before a start)."""
    spans = list(intervals)
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak
