"""Floors under a jobyard job: what the stack it is built on costs before jobyard does anything.

Each line is CPU per call (user + system of the process that serves it), measured
on this machine in one run, so that the distance to the Redis-based queues can be
read off the parts rather than guessed:

- ``http``: a FastAPI app on uvicorn (httptools, uvloop: what ``jobyard serve``
  runs), one ``POST`` route taking a small JSON body into a pydantic model and
  answering 201 with a small JSON model, the route a plain ``def`` (run in the
  thread pool, as jobyard's are); one keep-alive client, one request at a time.
  The same with an HTTP Basic dependency that runs in the thread pool too (the
  credential check's hop; no database read) shows what a second hop costs.
- ``sqlite``: a no-op job's three transactions through SQLAlchemy Core on a
  WAL-mode SQLite file, with nothing else (no HTTP, no threads, no child process):
  insert the job and its event; claim it (select, update, event); end it (update,
  event). The same three with the SQL written out, sent through SQLAlchemy's
  ``exec_driver_sql`` (no compiling, caching nor type processing; engine events
  still fire), through a DBAPI cursor inside SQLAlchemy's transaction, and through
  the ``sqlite3`` module alone: what a hand-written path below Core could save.
- ``postgres``: the same three transactions through SQLAlchemy Core on a scratch
  PostgreSQL database, psycopg 3: the CPU of this process and, apart, of its
  server backend (read from the backend's process counters).

    .venv/bin/python bench/bench_floors.py
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    update,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import free_port, wait_for

from bench.bench_cluster import scratch_database

APP = textwrap.dedent(
    """
    from typing import Annotated
    from fastapi import Depends, FastAPI
    from fastapi.security import HTTPBasic, HTTPBasicCredentials
    from pydantic import BaseModel

    class In(BaseModel):
        type: str
        args: dict[str, object] = {}

    class Out(BaseModel):
        id: int
        type: str
        state: str

    app = FastAPI()
    basic = HTTPBasic()

    def who(credentials: Annotated[HTTPBasicCredentials, Depends(basic)]) -> str:
        return credentials.username  # a def dependency: run in the thread pool

    @app.post("/plain", status_code=201)
    def plain(body: In) -> Out:
        return Out(id=1, type=body.type, state="queued")

    @app.post("/guarded", status_code=201)
    def guarded(body: In, user: Annotated[str, Depends(who)]) -> Out:
        return Out(id=1, type=body.type, state="queued")
    """
)


def cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def http_floor(calls: int) -> dict[str, float]:
    """Server CPU per request, in ms, for the two routes."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "floor_app.py").write_text(APP)
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port)]
        command += ["--log-level", "warning", "--no-access-log", "--http", "httptools"]
        command += ["--loop", "uvloop"]
        server = subprocess.Popen(command, cwd=tmp, env=os.environ | {"PYTHONPATH": tmp})
        try:
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, auth=("admin", "secret")) as client:
                wait_for(lambda: _up(client), 30, what="uvicorn")
                return {
                    route: _per_request(client, server.pid, f"/{route}", calls)
                    for route in ("plain", "guarded")
                }
        finally:
            server.terminate()
            server.wait(30)


def _up(client: httpx.Client) -> bool:
    try:
        return client.post("/plain", json={"type": "noop"}).status_code == 201
    except httpx.TransportError:
        return False


def _per_request(client: httpx.Client, pid: int, path: str, calls: int) -> float:
    for _ in range(200):  # warm up
        client.post(path, json={"type": "noop"})
    before = cpu(pid)
    for _ in range(calls):
        answer = client.post(path, json={"type": "noop"})
        assert answer.status_code == 201, answer.text
    return 1000 * (cpu(pid) - before) / calls


METADATA = MetaData()
JOBS = Table(
    "jobs",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("type", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    Column("worker", String(200)),
    Column("args", Text, nullable=False),
)
EVENTS = Table(
    "job_events",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("data", Text, nullable=False),
)
NEW = insert(JOBS).returning(JOBS.c.id)
EVENT = insert(EVENTS)
CLAIMABLE = select(JOBS.c.id).where(JOBS.c.state == "queued").order_by(JOBS.c.id).limit(1)
BY_ID = update(JOBS).where(JOBS.c.id == bindparam("job_id"))


def sqlite_floor(jobs: int) -> dict[str, float]:
    """CPU per no-op job, in ms, for its three transactions: Core, then sqlite3."""
    with tempfile.TemporaryDirectory() as tmp:
        return {
            "SQLAlchemy Core": _per_job(_core_job(f"{tmp}/core.db"), jobs),
            "exec_driver_sql": _per_job(_driver_sql_job(f"{tmp}/driver.db"), jobs),
            "DBAPI cursor": _per_job(_cursor_job(f"{tmp}/cursor.db"), jobs),
            "sqlite3": _per_job(_bare_job(f"{tmp}/bare.db"), jobs),
        }


def postgres_floor(jobs: int) -> tuple[float, float]:
    """CPU per no-op job, in ms, for its three transactions through Core on PostgreSQL:
    (this process, its server backend)."""
    with scratch_database("postgres") as (url, _):
        engine = create_engine(url, pool_size=1, max_overflow=0)
        METADATA.create_all(engine)
        job = _core(engine)
        with engine.connect() as conn:  # the pool's only connection: its backend serves all
            backend = psutil.Process(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        for _ in range(200):
            job()
        started, served = time.process_time(), sum(backend.cpu_times()[:2])
        for _ in range(jobs):
            job()
        used = time.process_time() - started
        engine.dispose()
        return 1000 * used / jobs, 1000 * (sum(backend.cpu_times()[:2]) - served) / jobs


def _per_job(job: Callable[[], None], jobs: int) -> float:
    for _ in range(200):
        job()
    started = time.process_time()
    for _ in range(jobs):
        job()
    return 1000 * (time.process_time() - started) / jobs


def _wal_engine(path: str) -> Engine:
    """A SQLAlchemy engine on a WAL SQLite file whose transactions begin IMMEDIATE."""
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _connect(dbapi: sqlite3.Connection, _: object) -> None:
        dbapi.isolation_level = None  # SQLAlchemy's own BEGIN, below
        dbapi.execute("PRAGMA journal_mode=WAL")
        dbapi.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    METADATA.create_all(engine)
    return engine


def _core_job(path: str) -> Callable[[], None]:
    return _core(_wal_engine(path))


def _core(engine: Engine) -> Callable[[], None]:
    def job() -> None:
        with engine.begin() as conn:
            job_id = conn.scalar(NEW, {"type": "noop", "state": "queued", "args": "{}"})
            conn.execute(EVENT, {"job_id": job_id, "kind": "state", "data": '{"state":"queued"}'})
        with engine.begin() as conn:
            found = conn.scalar(CLAIMABLE)
            conn.execute(BY_ID, {"job_id": found, "state": "running", "worker": "w1"})
            conn.execute(EVENT, {"job_id": found, "kind": "state", "data": "{}"})
        with engine.begin() as conn:
            conn.execute(BY_ID, {"job_id": found, "state": "succeeded"})
            conn.execute(EVENT, {"job_id": found, "kind": "state", "data": "{}"})

    return job


NEW_SQL = "INSERT INTO jobs (type, state, args) VALUES (?, ?, ?) RETURNING id"
EVENT_SQL = "INSERT INTO job_events (job_id, kind, data) VALUES (?, ?, ?)"
CLAIMABLE_SQL = "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1"
CLAIM_SQL = "UPDATE jobs SET state = ?, worker = ? WHERE id = ?"
END_SQL = "UPDATE jobs SET state = ? WHERE id = ?"


def _driver_sql_job(path: str) -> Callable[[], None]:
    engine = _wal_engine(path)

    def job() -> None:
        with engine.begin() as conn:
            job_id = conn.exec_driver_sql(NEW_SQL, ("noop", "queued", "{}")).scalar()
            conn.exec_driver_sql(EVENT_SQL, (job_id, "state", '{"state":"queued"}'))
        with engine.begin() as conn:
            found = conn.exec_driver_sql(CLAIMABLE_SQL).scalar()
            conn.exec_driver_sql(CLAIM_SQL, ("running", "w1", found))
            conn.exec_driver_sql(EVENT_SQL, (found, "state", "{}"))
        with engine.begin() as conn:
            conn.exec_driver_sql(END_SQL, ("succeeded", found))
            conn.exec_driver_sql(EVENT_SQL, (found, "state", "{}"))

    return job


def _cursor_job(path: str) -> Callable[[], None]:
    engine = _wal_engine(path)

    def job() -> None:
        with engine.begin() as conn:
            db = conn.connection.driver_connection
            (job_id,) = db.execute(NEW_SQL, ("noop", "queued", "{}")).fetchone()
            db.execute(EVENT_SQL, (job_id, "state", '{"state":"queued"}'))
        with engine.begin() as conn:
            db = conn.connection.driver_connection
            (found,) = db.execute(CLAIMABLE_SQL).fetchone()
            db.execute(CLAIM_SQL, ("running", "w1", found))
            db.execute(EVENT_SQL, (found, "state", "{}"))
        with engine.begin() as conn:
            db = conn.connection.driver_connection
            db.execute(END_SQL, ("succeeded", found))
            db.execute(EVENT_SQL, (found, "state", "{}"))

    return job


def _bare_job(path: str) -> Callable[[], None]:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY, type TEXT NOT NULL, state TEXT NOT NULL, "
        "worker TEXT, args TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE job_events (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL, "
        "kind TEXT NOT NULL, data TEXT NOT NULL)"
    )

    def job() -> None:
        db.execute("BEGIN IMMEDIATE")
        (job_id,) = db.execute(NEW_SQL, ("noop", "queued", "{}")).fetchone()
        db.execute(EVENT_SQL, (job_id, "state", '{"state":"queued"}'))
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        (found,) = db.execute(CLAIMABLE_SQL).fetchone()
        db.execute(CLAIM_SQL, ("running", "w1", found))
        db.execute(EVENT_SQL, (found, "state", "{}"))
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        db.execute(END_SQL, ("succeeded", found))
        db.execute(EVENT_SQL, (found, "state", "{}"))
        db.execute("COMMIT")

    return job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="requests, and jobs")
    args = parser.parse_args()
    for route, ms in http_floor(args.calls).items():
        print(f"http  {route:16s} {ms:6.3f} ms of server CPU per request")
    for layer, ms in sqlite_floor(args.calls).items():
        print(f"sqlite {layer:15s} {ms:6.3f} ms of CPU per job (3 transactions)")
    client, server = postgres_floor(args.calls)
    print(f"postgres Core   {client:6.3f} ms of client CPU per job, its backend {server:6.3f} ms")


if __name__ == "__main__":
    main()
