"""Test helpers: a real ``jobyard serve`` on a free port, and polling with a deadline.

Starting a server costs a second or more, so the tests of a module share one per
backend (:func:`shared_server`), on a database of its own; they tell their jobs
apart by the ids they were given. A test that crashes its server or needs other
settings starts a private one with the ``launch`` fixture (:class:`Launcher`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest

from jobyard.events.records import JobEvent
from jobyard.store import Store
from tests.databases import BACKENDS, Servers

FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = FIXTURES / "jobyard.yaml"
ADMIN = ("admin", "admin-password-of-the-tests")  # the first user of every test server
T = TypeVar("T")


def wait_for(
    probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or probe}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Sse:
    id: int | None
    event: str
    data: dict[str, Any]


def read_sse(
    lines: Iterator[str], stop: Callable[[Sse], bool] = lambda e: e.event == "close"
) -> Iterator[Sse]:
    """Server-sent events from a line iterator (just enough of the format for tests)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
            continue
        if data:
            event = Sse(
                int(fields["id"]) if "id" in fields else None,
                fields.get("event", "message"),
                json.loads("\n".join(data)),
            )
            yield event
            if stop(event):
                return
        fields, data = {}, []


class PortTaken(Exception):
    """The server could not listen: its port was taken after it was found free."""


@dataclass
class Server:
    """A ``jobyard serve`` subprocess; ``client`` talks to it over real HTTP."""

    database_url: str
    workdir: Path
    config: Path = CONFIG
    args: Sequence[str] = ()
    env: dict[str, str | None] = field(default_factory=dict)  # None: unset the variable
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    client: httpx.Client = field(init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        """Start on a free port; again on another if that one was taken meanwhile.

        A port is free when looked up, not necessarily when the server binds it: a
        test running in parallel may have taken it in between.
        """
        for _ in range(2):
            try:
                return self._start_on(free_port())
            except PortTaken:
                self.client.close()
        return self._start_on(free_port())

    def _start_on(self, port: int) -> Server:
        self.port = port
        command = [
            sys.executable, "-m", "jobyard", "serve",
            "--port", str(self.port),
            "--config", str(self.config),
            "--database-url", self.database_url,
            *self.args,
        ]  # fmt: skip
        defaults = {"JOBYARD_POLL_INTERVAL": "0.2", "JOBYARD_KILL_GRACE": "3"}
        defaults["JOBYARD_ADMIN_PASSWORD"] = ADMIN[1]
        chosen = os.environ | defaults | self.env
        env = {name: value for name, value in chosen.items() if value is not None}
        self.client = httpx.Client(base_url=self.url, timeout=30, auth=ADMIN)
        with (self.workdir / f"server-{self.port}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                command, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(self._healthy, timeout=60, what=f"server on port {self.port}")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            if "address already in use" in self._port_log():
                raise PortTaken(self.port)
            raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
        if not self._listening():
            return False  # and whatever answers on the port is another test's server
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def _listening(self) -> bool:
        assert self.proc is not None
        try:
            sockets = psutil.Process(self.proc.pid).net_connections("tcp")
        except psutil.NoSuchProcess:
            return False
        return any(s.status == psutil.CONN_LISTEN and s.laddr.port == self.port for s in sockets)

    def _port_log(self) -> str:
        return (self.workdir / f"server-{self.port}.log").read_text(errors="replace")

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.workdir.glob("server-*.log"))
        )

    def stop(self) -> None:
        if self.proc is None:
            return  # never started
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.client.close()

    def crash(self) -> None:
        """``kill -9`` the server, as a power cut would."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.client.close()

    # -- API shortcuts -----------------------------------------------------
    def submit(self, type_: str, expect: int = 201, **body: Any) -> dict[str, Any]:
        response = self.client.post("/api/v1/jobs", json={"type": type_, **body})
        assert response.status_code == expect, response.text
        result: dict[str, Any] = response.json()
        return result

    def job(self, job_id: int) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def act(self, job_id: int, action: str, expect: int | None = None) -> httpx.Response:
        response = self.client.post(f"/api/v1/jobs/{job_id}/{action}")
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    def wait_state(self, job_id: int, *states: str, timeout: float = 90) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["state"] in states else None

        return wait_for(probe, timeout, what=f"job {job_id} to be {'/'.join(states)}")

    def history(self, job_id: int) -> list[JobEvent]:
        """The job's durable event log, read from the database."""
        return self._read(lambda store: store.jobs.job_events(job_id))

    def last_event_id(self) -> int:
        """The newest event id in the log: where a stream of what comes next starts."""
        return self._read(lambda store: store.events.last_event_id())

    def _read(self, query: Callable[[Store], T]) -> T:
        store = Store(self.database_url)
        try:
            return query(store)
        finally:
            store.close()

    def subscribers(self) -> int:
        """How many event streams the server is feeding now."""
        count: int = self.client.get("/healthz").json()["stream_subscribers"]
        return count

    def logs(self, job_id: int, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        response = self.client.get(
            f"/api/v1/jobs/{job_id}/logs", params={"after": after, "limit": limit}
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def stream(
        self,
        path: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        limit: int | None = None,
    ) -> list[Sse]:
        """Read an SSE response until ``close`` (or ``limit`` events), then hang up."""
        events: list[Sse] = []
        with self.client.stream(method, path, headers=headers, json=json_body) as response:
            assert response.status_code in (200, 201), response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            for event in read_sse(response.iter_lines()):
                events.append(event)
                if limit is not None and len(events) >= limit:
                    break
        return events


class Launcher:
    """Starts ``jobyard serve`` processes in one directory and stops them all at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Server] = []

    def __call__(
        self,
        database_url: str,
        *,
        config: Path = CONFIG,
        args: Sequence[str] = (),
        env: Mapping[str, str | None] | None = None,
    ) -> Server:
        server = Server(database_url, self.workdir, config=config, args=args, env=dict(env or {}))
        self.started.append(server)  # before it starts: a start that times out leaves a process
        return server.start()

    def stop_all(self) -> None:
        for server in reversed(self.started):
            server.stop()


def shared_server(
    *,
    backends: Sequence[Any] = BACKENDS,
    config: Path = CONFIG,
    args: Sequence[str] = (),
    env: Mapping[str, str | None] | None = None,
) -> Any:
    """A module-scoped fixture: one server per backend for all the tests of a module.

    Assign it to the fixture's name in the module (``server = shared_server()``).
    """

    @pytest.fixture(scope="module", params=backends)
    def server(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Server]:
        workdir = tmp_path_factory.mktemp(f"server-{request.param}")
        with ExitStack() as stack:
            url = _module_database(request, workdir, stack)
            launch = Launcher(workdir)
            stack.callback(launch.stop_all)
            yield launch(url, config=config, args=args, env=env)

    return server


def _module_database(request: pytest.FixtureRequest, workdir: Path, stack: ExitStack) -> str:
    """A migrated database of the module's own on ``request.param``, dropped with ``stack``."""
    if request.param == "sqlite":
        path = workdir / "jobs.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    servers: Servers = request.getfixturevalue("servers")
    return stack.enter_context(servers.private_database(request.param))


def start_run(server: Server, workflow: str, **args: Any) -> dict[str, Any]:
    response = server.client.post(f"/api/v1/workflows/{workflow}/runs", json={"args": args})
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def run_in(server: Server, run_id: int, *states: str, timeout: float = 60) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        run: dict[str, Any] = server.client.get(f"/api/v1/workflow-runs/{run_id}").json()
        return run if run["state"] in states else None

    return wait_for(probe, timeout, what=f"run {run_id} to be {'/'.join(states)}")
