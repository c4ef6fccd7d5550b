"""A PostgreSQL server of a test's own, to stop and start without touching the shared one.

``initdb`` into a temporary directory, a free port, ``fsync`` off. Used by the
``private_postgres`` fixture (``tests/conftest.py``) wherever a test takes the
database away: a restart under a running server, an outage under load.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.harness import free_port


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server's binaries (Debian's layout), or None."""
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    return max(found, key=lambda p: int(p.parent.name), default=None) if found else None


class PrivatePostgres:
    """A throwaway PostgreSQL server in ``root``, listening on 127.0.0.1:``port``.

    ``initdb`` refuses to run as root: as root, the server runs as the ``postgres``
    OS user and ``root`` belongs to it.
    """

    def __init__(
        self,
        bindir: Path,
        root: Path,
        port: int,
        as_user: list[str],
        addresses: tuple[str, ...] = (),
        clients: tuple[str, ...] = (),
    ) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = port
        self.as_user = as_user
        self.addresses = addresses  # listened on besides 127.0.0.1
        self.clients = clients  # networks (CIDR) whose clients are trusted besides localhost
        self.running = False

    @property
    def url(self) -> str:
        return self.url_at("127.0.0.1")

    def url_at(self, address: str) -> str:
        return f"postgresql://postgres@{address}:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [*self.as_user, str(self.bindir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"{tool} failed:\n{done.stdout}{done.stderr}\n{self.log()}"

    def init(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        if self.clients:
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.writelines(f"host all all {network} trust\n" for network in self.clients)
        return self

    def start(self) -> None:
        options = (
            f"-c port={self.port} -c listen_addresses={','.join(('127.0.0.1', *self.addresses))} "
            f"-c unix_socket_directories={self.root} -c fsync=off -c full_page_writes=off"
        )
        log = str(self.root / "server.log")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60", "start"
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def private_postgres_server(
    addresses: tuple[str, ...] = (), clients: tuple[str, ...] = ()
) -> Iterator[PrivatePostgres]:
    """A started private server, stopped and removed at the end of ``with``.

    ``addresses``: more local addresses to listen on; ``clients``: networks (CIDR)
    trusted like localhost (a network namespace's side of a veth pair, for one).

    Skips the test (fails it under ``JOBYARD_REQUIRE_SERVICES=1``) where no server
    binaries are installed, or where running as root without a ``postgres`` user.
    """
    bindir = postgres_bin()
    as_user: list[str] = []
    owner: pwd.struct_passwd | None = None
    reason = None if bindir else "no PostgreSQL server binaries under /usr/lib/postgresql"
    if bindir and os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        except KeyError:
            reason = "running as root and there is no postgres OS user to run initdb as"
    if reason is not None or bindir is None:
        if os.environ.get("JOBYARD_REQUIRE_SERVICES") == "1":
            pytest.fail(str(reason))
        pytest.skip(str(reason))
    root = Path(tempfile.mkdtemp(prefix="jobyard-pg-"))  # not under pytest's root-only tmp
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    server = PrivatePostgres(bindir, root, free_port(), as_user, addresses, clients)
    try:
        server.init().start()
        yield server
    finally:
        if server.running:
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
