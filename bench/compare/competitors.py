"""The anchors: Celery, RQ, Dramatiq, Huey (Redis) and Procrastinate (PostgreSQL)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import psycopg

from bench.compare.system import PgScratch, RedisQueue, System

APPS = "bench.compare.apps"


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


class OnRedis(System):
    """A system whose queue is a Redis database of its own, flushed before and after."""

    db = 0
    package = ""

    def __init__(self, workdir: Path, stamp_addr: str) -> None:
        super().__init__(workdir, stamp_addr)
        self.redis = RedisQueue(self.db)
        self.env["BENCH_REDIS_URL"] = self.redis.url
        self.roles.servers = "redis"
        self._task: Any = None

    @classmethod
    def installed(cls) -> bool:
        return importlib.util.find_spec(cls.package) is not None

    def prepare(self) -> None:
        self.redis.flush()

    def cleanup(self) -> None:
        self.redis.flush()

    def app(self, module: str) -> Any:
        """The app module, imported in the harness with this system's broker address."""
        import os

        os.environ["BENCH_REDIS_URL"] = self.redis.url
        return importlib.import_module(f"{APPS}.{module}")


class Celery(OnRedis):
    name = "celery"
    shape = "1 worker, prefork pool, `--concurrency 2` (Redis broker, results ignored)"
    db, package = 1, "celery"

    def start(self, workers: bool = True) -> None:
        self._task = self.app("celery_app").noop
        if workers:
            command = [
                _bin("celery"), "-A", f"{APPS}.celery_app", "worker", "--pool", "prefork",
                "--concurrency", "2", "--loglevel", "WARNING",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ]  # fmt: skip
            self.launch("worker", command)

    def submit(self, key: int) -> None:
        self._task.delay(key)


class Rq(OnRedis):
    name = "rq"
    shape = "2 x `rq worker` (each forks a work horse per job)"
    db, package = 2, "rq"

    def start(self, workers: bool = True) -> None:
        import redis
        import rq

        self._conn = redis.Redis.from_url(self.redis.url)
        self._queue = rq.Queue("default", connection=self._conn)
        if workers:
            for index in (1, 2):
                command = [_bin("rq"), "worker", "--url", self.redis.url, "--quiet", "default"]
                self.launch(f"worker-{index}", command)

    def submit(self, key: int) -> None:
        from bench.compare.body import noop

        self._queue.enqueue(noop, key)

    def completed(self) -> int | None:
        return int(self._queue.finished_job_registry.count)

    def close_client(self) -> None:
        if getattr(self, "_conn", None) is not None:
            self._conn.close()
            self._conn = None


class Dramatiq(OnRedis):
    name = "dramatiq"
    shape = "`dramatiq --processes 2 --threads 1` (2 processes x 1 thread, Redis broker)"
    db, package = 3, "dramatiq"

    def start(self, workers: bool = True) -> None:
        self._task = self.app("dramatiq_app").noop
        if workers:
            command = [
                _bin("dramatiq"), f"{APPS}.dramatiq_app", "--processes", "2", "--threads", "1",
            ]  # fmt: skip
            self.launch("dramatiq", command)

    def submit(self, key: int) -> None:
        self._task.send(key)


class Huey(OnRedis):
    name = "huey"
    shape = "`huey_consumer -k process -w 2` (2 worker processes, Redis, results off)"
    db, package = 4, "huey"

    def start(self, workers: bool = True) -> None:
        self._task = self.app("huey_app").noop
        if workers:
            command = [_bin("huey_consumer"), f"{APPS}.huey_app.huey", "-k", "process", "-w", "2"]
            self.launch("consumer", command)

    def submit(self, key: int) -> None:
        self._task(key)


class Procrastinate(System):
    name = "procrastinate"
    shape = "2 x `procrastinate worker --concurrency 1` (scratch PostgreSQL database)"

    @classmethod
    def installed(cls) -> bool:
        return importlib.util.find_spec("procrastinate") is not None

    def prepare(self) -> None:
        self.cleanup()
        self.pg = PgScratch("procrastinate_compare")
        self.pg.create()
        self.env["BENCH_PG_URL"] = self.pg.url
        self.roles.servers = self.pg.name
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            conn.execute(self._schema())

    @staticmethod
    def _schema() -> Any:
        from procrastinate import schema

        return schema.SchemaManager.get_schema()

    def start(self, workers: bool = True) -> None:
        # The harness's own app, on this round's database (the module's app is made once
        # per process, with the address its worker processes are started with).
        import procrastinate

        from bench.compare.body import noop

        connector = procrastinate.PsycopgConnector(conninfo=self.pg.url)
        self._app = procrastinate.App(connector=connector)
        self._task = self._app.task(name="noop")(noop)
        self._app.open()
        if workers:
            for index in (1, 2):
                command = [
                    _bin("procrastinate"), "--app", f"{APPS}.procrastinate_app.app",
                    "worker", "--concurrency", "1",
                ]  # fmt: skip
                self.launch(f"worker-{index}", command)

    def submit(self, key: int) -> None:
        self._task.defer(key=key)

    def completed(self) -> int | None:
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
            ).fetchone()
        return int(row[0]) if row else 0

    def xacts(self) -> int | None:
        return self.pg.xacts()

    def close_client(self) -> None:
        if getattr(self, "_app", None) is not None:
            self._app.close()
            self._app = None

    def cleanup(self) -> None:
        if hasattr(self, "pg"):
            self.pg.drop()
