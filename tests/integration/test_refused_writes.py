"""A write the database refuses fails the attempt at once, loudly; it is not retried.

Only an unreachable database is waited out. Here a trigger refuses a log line
(a stand-in for a value the database will never take, or a bug in the SQL): the
job must end ``failed`` with the reason in its error and its log, and the
worker must log the traceback. On MariaDB PyMySQL reports a trigger's SIGNAL as
an OperationalError, the class that also means "unreachable", so the case runs
on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from jobyard.store import Store
from tests.harness import Server

REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse_line BEFORE INSERT ON job_events"
        " WHEN NEW.line LIKE '%forbidden%' BEGIN SELECT RAISE(ABORT, '{message}'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_line() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.line LIKE '%forbidden%' THEN RAISE EXCEPTION '{message}'; END IF;"
        " RETURN NEW; END $$",
        "CREATE TRIGGER refuse_line BEFORE INSERT ON job_events"
        " FOR EACH ROW EXECUTE FUNCTION refuse_line()",
    ],
}
ALLOW = {
    "sqlite": ["DROP TRIGGER refuse_line"],
    "postgresql": ["DROP TRIGGER refuse_line ON job_events", "DROP FUNCTION refuse_line()"],
}


def execute(url: str, statements: dict[str, list[str]], message: str = "") -> None:
    store = Store(url)
    try:
        with store.engine.begin() as conn:
            for statement in statements[store.engine.dialect.name]:
                conn.execute(text(statement.replace("{message}", message)))
    finally:
        store.close()


@pytest.fixture(params=["line refused", "forbidden line"])
def refused(database_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """Makes ``job_events`` of ``database_url`` refuse lines holding "forbidden"; yields
    the error message, which the line telling of the error quotes (refused in turn when
    it holds "forbidden": the job must end all the same)."""
    execute(database_url, REFUSE, request.param)
    try:
        yield request.param
    finally:  # the server databases are shared by the session's tests
        execute(database_url, ALLOW)


@pytest.mark.parametrize(
    "database_url",
    [pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_a_refused_write_fails_the_attempt_loudly(
    database_url: str, refused: str, tmp_path: Path
) -> None:
    server = Server(database_url=database_url, workdir=tmp_path).start()
    try:
        job = server.submit("echo", args={"text": "forbidden"})
        done = server.wait_state(job["id"], "failed", "succeeded", timeout=30)
        error = r"internal error in the worker: \w+Error; output lines not stored: [12]"
        assert re.fullmatch(error, done["error"]), done["error"]
        assert (done["reason"], done["exit_code"]) == ("worker_error", None)  # not exit_code
        assert done["attempt"] == 1
        system = [line["line"] for line in server.logs(job["id"]) if line["stream"] == "system"]
        if "forbidden" in refused:
            assert not any(line.startswith(done["error"]) for line in system)
            assert "could not store a failed job's output" in server.log()
        else:
            assert system[-1].startswith(done["error"] + ": ")
            assert system[-1].endswith(refused)
        assert "job run crashed" in server.log()
        assert "Traceback" in server.log()
    finally:
        server.stop()
