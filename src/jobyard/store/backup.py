"""Backups of the database: SQLite's online backup, and the dump command of a server.

SQLite: :func:`backup_sqlite` copies the file through SQLite's online backup
API, page by page, so the copy is one consistent snapshot even while a server
writes to it (writers wait a moment between steps, they are never refused).
PostgreSQL and MariaDB/MySQL have their own consistent dump tools;
:func:`dump_command` builds the ``pg_dump`` / ``mariadb-dump`` command line for a
URL (the password goes in the environment, never on the command line).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import make_url

from jobyard.store.coltypes import MYSQL
from jobyard.store.engine import normalize_url


@dataclass(frozen=True)
class DumpCommand:
    """A dump tool's argv that writes the database to ``path``, and the variables it needs."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def shown(self) -> str:
        """The command as a shell line, the password left as a variable to set."""
        names = " ".join(f"{name}=…" for name in self.env)
        return f"{names} {' '.join(self.argv)}".strip()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another backend (or an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    return Path(parsed.database) if parsed.database not in (None, "", ":memory:") else None


def backup_sqlite(source: Path, target: Path, *, pages: int = 1024) -> int:
    """Copy the SQLite database ``source`` to ``target`` while it may be in use; its size.

    ``pages`` are copied per step; between steps, writers of the source go on.
    An existing ``target`` is refused, so a backup never overwrites another.
    """
    if not source.exists():
        raise FileNotFoundError(f"no SQLite database at {source}")
    claim_target(target)
    try:
        # A URI's path is percent-encoded: a '#' or '?' in a directory's name would end it
        # (and drop ?mode=ro), and SQLite would open, or make, another file.
        uri = f"file:{quote(str(source.absolute()))}?mode=ro"
        src = sqlite3.connect(uri, uri=True, timeout=30)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst, pages=pages, sleep=0.005)
            finally:
                dst.close()
        finally:
            src.close()
    except BaseException:
        target.unlink(missing_ok=True)  # made above: a failed copy leaves nothing in the way
        raise
    return target.stat().st_size


def claim_target(target: Path) -> None:
    """Create ``target`` empty for a dump tool to write, or raise FileExistsError when it
    exists: a backup never overwrites another (created here, checked and made at once)."""
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise FileExistsError(f"{target} exists already") from None
    except FileNotFoundError:
        raise FileNotFoundError(f"cannot write {target}: no directory {target.parent}") from None
    except OSError as exc:  # not allowed, read-only, a directory …
        raise OSError(f"cannot write {target}: {exc.strerror}") from None


def dump_command(url: str, target: Path) -> DumpCommand:
    """The ``pg_dump`` or ``mariadb-dump`` command that writes the database of ``url``."""
    parsed = normalize_url(url)  # postgres:// is PostgreSQL too
    backend = parsed.get_backend_name()
    secret = None if parsed.password is None else str(parsed.password)
    if backend == "postgresql":
        argv = ["pg_dump", "--format=custom", f"--file={target}"]
        argv += _flags(("--host", parsed.host), ("--port", parsed.port))
        argv += _flags(("--username", parsed.username))
        argv.append(parsed.database or "postgres")
        return DumpCommand(argv, _env("PGPASSWORD", secret))
    if backend in MYSQL:
        # One transaction for InnoDB tables: a consistent snapshot without locking writers.
        argv = ["mariadb-dump", "--single-transaction", "--routines", f"--result-file={target}"]
        argv += _flags(("--host", parsed.host), ("--port", parsed.port))
        argv += _flags(("--user", parsed.username))
        argv.append(parsed.database or "")
        return DumpCommand(argv, _env("MYSQL_PWD", secret))
    raise ValueError(f"no dump tool known for {backend!r}")


def _env(name: str, secret: str | None) -> dict[str, str]:
    return {} if secret is None else {name: secret}


def _flags(*pairs: tuple[str, object]) -> list[str]:
    return [f"{flag}={value}" for flag, value in pairs if value not in (None, "")]


def dump_environment(command: DumpCommand) -> dict[str, str]:
    """The process environment with the command's variables added."""
    return {**os.environ, **command.env}
