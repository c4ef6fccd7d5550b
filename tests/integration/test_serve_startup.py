"""`jobyard serve` refusing to start says why in one line, before it starts anything; so do
the other commands on the database when its URL is wrong or nothing answers there."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest


def serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "jobyard", "serve", "--host", "127.0.0.1", *args]
    command += ["--database-url", f"sqlite:///{tmp_path / 'jobs.db'}"]
    environ = os.environ | {"JOBYARD_ADMIN_PASSWORD": "", **env}
    return subprocess.run(
        command, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60
    )


def test_a_taken_port_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = serve(tmp_path, "--port", str(port))
    assert result.returncode == 1, result.stderr
    said = f"jobyard: error: cannot listen on 127.0.0.1:{port}: address already in use"
    assert result.stderr.splitlines()[-1] == said
    assert "worker started" not in result.stderr
    assert not (tmp_path / "jobs.db").exists()  # not even the database was made


def test_a_bad_setting_names_the_variable_or_the_option(tmp_path: Path) -> None:
    short = serve(tmp_path, "--port", "0", JOBYARD_ADMIN_PASSWORD="short")
    assert short.returncode == 2
    said = "jobyard: error: JOBYARD_ADMIN_PASSWORD: at least 8 characters"
    assert short.stderr.splitlines() == [said]
    # Only a server makes the first admin: the commands on the database leave it alone.
    command = [sys.executable, "-m", "jobyard", "migrate"]
    command += ["--database-url", f"sqlite:///{tmp_path / 'other.db'}"]
    environ = os.environ | {"JOBYARD_ADMIN_PASSWORD": "short"}
    migrated = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    lease = serve(tmp_path, "--port", "0", JOBYARD_LEASE_TIMEOUT="0s")
    assert lease.returncode == 2
    assert lease.stderr.splitlines()[-1].startswith("jobyard: error: JOBYARD_LEASE_TIMEOUT: ")
    # A setting that is also an option may have come from either: both are named.
    port = serve(tmp_path, JOBYARD_PORT="70000")
    assert port.returncode == 2
    assert port.stderr.splitlines()[-1].startswith("jobyard: error: --port / JOBYARD_PORT: ")
    log_format = serve(tmp_path, "--port", "0", "--log-format", "xml")
    assert log_format.returncode == 2
    said = "jobyard: error: --log-format / JOBYARD_LOG_FORMAT: Input should be 'text' or 'json'"
    assert log_format.stderr.splitlines() == [said]


DATABASE = "jobyard: error: --database-url / JOBYARD_DATABASE_URL: "
ON_THE_DATABASE = [
    ("serve", "--port", "0"),
    ("worker",),
    ("migrate",),
    ("prune",),
    ("user", "list"),
]


def jobyard(tmp_path: Path, *args: str, url: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "jobyard", *args, "--database-url", url]
    environ = os.environ | {"JOBYARD_ADMIN_PASSWORD": ""}
    return subprocess.run(
        command, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("args", [*ON_THE_DATABASE, ("backup", "copy.db")])
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("nosuch://u:s3cret@x/db", "unknown database 'nosuch': use sqlite:///./jobyard.db, "),
        ("postgresql://u:s3cret@host:port/db", "not a database URL (e.g. sqlite:///./jobyard.db, "),
        ("sqlite:///jobs.db?synchronous=off", "the SQLite URL's synchronous must be normal or "),
    ],
)
def test_a_bad_database_url_is_one_line(
    tmp_path: Path, args: tuple[str, ...], url: str, why: str
) -> None:
    result = jobyard(tmp_path, *args, url=url)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(DATABASE + why)
    assert "s3cret" not in line


@pytest.mark.parametrize("args", [*ON_THE_DATABASE, ("backup", "copy.dump")])
def test_a_database_that_does_not_answer_is_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = jobyard(tmp_path, *args, url="postgresql://u:s3cret@127.0.0.1:1/none")
    # The user commands keep the code of an unreachable server; the others fail to start.
    assert result.returncode == (5 if args[0] == "user" else 1)
    [line] = result.stderr.splitlines()
    said = "cannot connect to postgresql://u:***@127.0.0.1:1/none: connection failed: "
    assert line.startswith(DATABASE + said)
    assert line.endswith("Connection refused")
    assert not (tmp_path / "copy.dump").exists()  # a backup left nothing in the way


def test_a_schema_a_newer_version_upgraded_is_one_line_and_left_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    created = jobyard(tmp_path, "migrate", url=url)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("database schema created at revision ")
    again = jobyard(tmp_path, "migrate", url=url)
    assert again.stdout.startswith("database is up to date at revision ")
    with sqlite3.connect(tmp_path / "newer.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    said = f"the schema of {url} is at revision '9999', which jobyard "
    for args in ON_THE_DATABASE:
        result = jobyard(tmp_path, *args, url=url)
        assert result.returncode == (5 if args[0] == "user" else 1), args
        [line] = result.stderr.splitlines()
        assert line.startswith(DATABASE + said), line
        assert line.endswith("a newer jobyard upgraded it; run that one")
    with sqlite3.connect(tmp_path / "newer.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999",)]


def test_a_password_in_the_query_and_an_unreadable_option_are_one_line(tmp_path: Path) -> None:
    hidden = jobyard(tmp_path, "migrate", url="postgresql://u@127.0.0.1:1/db?password=s3cret")
    assert hidden.returncode == 1
    [line] = hidden.stderr.splitlines()
    said = "cannot connect to postgresql://u@127.0.0.1:1/db?password=***: "
    assert line.startswith(DATABASE + said)
    unreadable = jobyard(tmp_path, "migrate", url=f"sqlite:///{tmp_path}/x.db?timeout=soon")
    assert unreadable.returncode == 2
    said = f"cannot use sqlite:///{tmp_path}/x.db?timeout=soon: could not convert string to float"
    assert unreadable.stderr.splitlines() == [DATABASE + said + ": 'soon'"]


def test_the_first_admins_banner_names_the_servers_database(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    command = [sys.executable, "-m", "jobyard", "serve", "--host", "127.0.0.1", "--port", "0"]
    command += ["--database-url", database, "--no-worker"]
    environ = os.environ | {"JOBYARD_ADMIN_PASSWORD": ""}
    server = subprocess.Popen(command, cwd=tmp_path, env=environ, stderr=subprocess.PIPE, text=True)
    deadline = threading.Timer(60, server.kill)  # a banner that never comes fails, not hangs
    deadline.start()
    try:
        assert server.stderr is not None
        for line in server.stderr:
            if "set-password" in line:
                break
    finally:
        deadline.cancel()
        server.terminate()
        server.communicate(timeout=30)  # closes the pipe too
    assert line == f"`jobyard user set-password admin --database-url '{database}'`.\n"


@pytest.mark.parametrize("args", [("serve", "--port", "0"), ("worker",), ("prune",)])
@pytest.mark.parametrize("nodes", ["{}", "", "[]"])
def test_a_workflow_without_nodes_is_one_line_before_anything_starts(
    tmp_path: Path, args: tuple[str, ...], nodes: str
) -> None:
    config = tmp_path / "jobyard.yaml"
    types = "job_types:\n  hello: {command: [echo, hi]}\n"
    config.write_text(f"{types}workflows:\n  nightly:\n    nodes: {nodes}\n")
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    result = jobyard(tmp_path, *args, "--config", str(config), url=url)
    assert result.returncode == 2, result.stderr
    why = (
        "must be a mapping of names to values"
        if nodes == "[]"
        else "a workflow needs at least one node"
    )
    assert result.stderr.splitlines() == [
        f"jobyard: error: {config}:5: workflows.nightly.nodes: {why}"
    ]
    assert not (tmp_path / "jobs.db").exists()  # nothing was made, let alone run


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_lease_shorter_than_two_heartbeats_is_one_line_before_anything_starts(
    tmp_path: Path, command: str
) -> None:
    """Every job running longer than such a lease would be lost as its worker's."""
    run = [sys.executable, "-m", "jobyard", command, "--database-url", f"sqlite:///{tmp_path}/j.db"]
    lease = {"JOBYARD_LEASE_TIMEOUT": "10s", "JOBYARD_ADMIN_PASSWORD": ""}
    env = os.environ | lease | {"JOBYARD_HEARTBEAT_INTERVAL": "30s"}
    result = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    said = (
        "jobyard: error: JOBYARD_LEASE_TIMEOUT (10 s) must be at least 2 times "
        "JOBYARD_HEARTBEAT_INTERVAL (30 s), and is best 3-6 times it"
    )
    assert result.stderr.splitlines() == [said]
    assert not (tmp_path / "j.db").exists()  # nothing started
    # The commands that only work on the database are not refused for it.
    migrate = [sys.executable, "-m", "jobyard", "migrate", "--database-url", run[-1]]
    migrated = subprocess.run(migrate, env=env, capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
