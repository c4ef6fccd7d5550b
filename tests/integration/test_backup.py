"""``jobyard backup`` copies a live SQLite database; a server started on the copy recovers
the jobs that were running when it was taken (retried, or ended ``worker_lost``)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from jobyard.store import backup
from tests.harness import Launcher
from tests.processes import running_with_processes


def jobyard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "jobyard", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_backup_of_a_live_server_restores_and_recovers_running_jobs(
    sqlite_url: str, launch: Launcher, tmp_path: Path
) -> None:
    server = launch(sqlite_url)
    done = server.submit("echo", args={"text": "before"})
    server.wait_state(done["id"], "succeeded")
    lost = server.submit("sleep", args={"seconds": 60})
    retried = server.submit("once-then-quick", args={"marker": str(tmp_path / "marker")})
    running_with_processes(server, lost["id"], 3)
    running_with_processes(server, retried["id"], 3)

    copy = tmp_path / "backup.db"
    taken = jobyard("backup", str(copy), "--database-url", sqlite_url, cwd=tmp_path)
    assert taken.returncode == 0, taken.stderr
    assert f"to {copy}" in taken.stdout
    with sqlite3.connect(copy) as db:  # a whole, consistent database
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        states = dict(db.execute("SELECT id, state FROM jobs").fetchall())
    assert states == {done["id"]: "succeeded", lost["id"]: "running", retried["id"]: "running"}
    again = jobyard("backup", str(copy), "--database-url", sqlite_url, cwd=tmp_path)
    assert again.returncode == 2
    assert "exists already" in again.stderr  # a backup never overwrites another
    server.stop()

    restored = tmp_path / "restored.db"
    restored.write_bytes(copy.read_bytes())
    second = launch(f"sqlite:///{restored}")
    assert second.wait_state(lost["id"], "failed")["reason"] == "worker_lost"
    assert second.wait_state(retried["id"], "succeeded")["attempt"] == 2
    assert second.job(done["id"])["state"] == "succeeded"
    assert [line["line"] for line in second.logs(retried["id"])][-1] == "second"


def test_a_backup_never_overwrites_a_file_on_any_backend(database_url: str, tmp_path: Path) -> None:
    taken = tmp_path / "taken.backup"
    first = jobyard("backup", str(taken), "--database-url", database_url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert taken.stat().st_size > 0
    before = taken.read_bytes()
    again = jobyard("backup", str(taken), "--database-url", database_url, cwd=tmp_path)
    assert (again.returncode, again.stderr) == (2, f"jobyard: error: {taken} exists already\n")
    assert taken.read_bytes() == before
    nowhere = tmp_path / "no-such-dir" / "x.backup"
    missing = jobyard("backup", str(nowhere), "--database-url", database_url, cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (
        2,
        f"jobyard: error: cannot write {nowhere}: no directory {nowhere.parent}\n",
    )


@pytest.mark.parametrize("folder", ["odd#dir", "50% off", "what?"])
def test_a_database_in_a_folder_of_any_name_is_backed_up_whole(tmp_path: Path, folder: str) -> None:
    """The path went into an SQLite URI as it was: a '#' ended it, and the backup was an
    empty database of another file, which it made (exit 0)."""
    (tmp_path / folder).mkdir()
    source = tmp_path / folder / "jobs.db"
    with sqlite3.connect(source) as db:
        db.execute("CREATE TABLE kept (n INTEGER)")
        db.execute("INSERT INTO kept VALUES (7)")
    db.close()
    copy = tmp_path / "copy.db"
    backup.backup_sqlite(source, copy)
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT n FROM kept").fetchall() == [(7,)]
    db.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["copy.db", folder])


def test_a_failed_backup_leaves_no_file_in_the_way(tmp_path: Path) -> None:
    source = tmp_path / "not-a-database.db"
    source.write_text("plain text, not SQLite\n" * 100)
    target = tmp_path / "copy.db"
    with pytest.raises(sqlite3.DatabaseError):
        backup.backup_sqlite(source, target)
    assert not target.exists()  # so the next try is not refused as "exists already"


def test_dump_commands_of_servers_keep_the_password_out_of_argv() -> None:
    pg = backup.dump_command("postgresql://ops:s3cret@db.example:5433/jobs", Path("/b/x.dump"))
    assert pg.argv == [
        "pg_dump", "--format=custom", "--file=/b/x.dump",
        "--host=db.example", "--port=5433", "--username=ops", "jobs",
    ]  # fmt: skip
    assert pg.env == {"PGPASSWORD": "s3cret"}
    assert backup.dump_command("postgres://ops@db/jobs", Path("x")).argv[0] == "pg_dump"
    assert "s3cret" not in pg.shown()
    maria = backup.dump_command("mysql+pymysql://root@127.0.0.1/jobs", Path("x.sql"))
    assert maria.argv[:2] == ["mariadb-dump", "--single-transaction"]
    assert maria.argv[-1] == "jobs"
    assert maria.env == {}
    assert backup.sqlite_path("sqlite:///./a.db") == Path("./a.db")
    assert backup.sqlite_path("postgresql://x/y") is None
