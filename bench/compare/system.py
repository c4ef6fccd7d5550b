"""What every system adapter offers the workload, and the servers they share."""

from __future__ import annotations

import subprocess
import time
import uuid
from abc import ABC, abstractmethod
from pathlib import Path

import psycopg

from bench.compare import procs

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


class System(ABC):
    """One job system in its 2-slot shape: started, fed one job at a time, stopped."""

    name: str = ""
    shape: str = ""  # how its two slots are made, for the report
    anchor = True  # a competitor (jobyard is measured against the best of these)

    def __init__(self, workdir: Path, stamp_addr: str) -> None:
        self.workdir = workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = {"BENCH_STAMP_ADDR": stamp_addr}
        self.roles = procs.Roles()
        self.running: list[tuple[subprocess.Popen[bytes], Path]] = []

    @staticmethod
    def installed() -> bool:
        return True

    @abstractmethod
    def prepare(self) -> None:
        """A fresh, empty queue (a flushed Redis db, a new database)."""

    @abstractmethod
    def start(self, workers: bool = True) -> None:
        """Start the system (without its workers: only what takes submissions)."""

    @abstractmethod
    def submit(self, key: int) -> None:
        """Submit one no-op job through the system's normal API."""

    def completed(self) -> int | None:
        """How many jobs the system itself records as done (None: it keeps no record)."""
        return None

    def xacts(self) -> int | None:
        """Transactions of the system's database so far (None: not countable from outside)."""
        return None

    def cleanup(self) -> None:
        """Drop what :meth:`prepare` made."""
        return None

    def close_client(self) -> None:
        """Close the harness's connections to the system (before its processes stop)."""
        return None

    def launch(self, role: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log = self.workdir / f"{role}.log"
        proc = procs.start(command, log, self.env | (env or {}))
        self.running.append((proc, log))
        self.roles.pids[role] = proc.pid

    def check_alive(self) -> None:
        for proc, log in self.running:
            procs.alive(proc, log)

    def stop(self) -> None:
        self.close_client()
        for proc, _ in reversed(self.running):
            procs.stop(proc)
        self.running.clear()
        self.roles.pids.clear()


class RedisQueue:
    """A Redis database of the system's own (never FLUSHALL: others may use other dbs)."""

    def __init__(self, db: int) -> None:
        self.db = db
        self.url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"

    def flush(self) -> None:
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=self.db)
        try:
            client.flushdb()
        finally:
            client.close()


class PgScratch:
    """A scratch PostgreSQL database, dropped by :meth:`drop`."""

    def __init__(self, prefix: str) -> None:
        self.name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.url = PG_ADMIN.rsplit("/", 1)[0] + f"/{self.name}"
        self.created = False

    def create(self) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.name}")
        self.created = True

    def drop(self) -> None:
        if self.created:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
            self.created = False

    def xacts(self) -> int:
        """Commits + rollbacks of the database, once its stopped backends have flushed them.

        A backend reports its counts when it exits (and, while it lives, at most once
        a second); so this waits until no backend serves the database, then until
        two readings agree.
        """
        query = (
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = %(db)s), "
            "xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %(db)s"
        )
        last = -1
        deadline = time.monotonic() + 20
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            while True:
                row = conn.execute(query, {"db": self.name}).fetchone()
                assert row is not None
                busy, count = row
                if (busy == 0 and count == last) or time.monotonic() > deadline:
                    return int(count)
                last = int(count) if busy == 0 else -1
                time.sleep(0.2)
