"""The shipped deployment files: linted, validated, and every command line they run, run.

No container engine runs here, so the image is never built: the Dockerfile is
linted by hadolint and the compose file validated against the Compose
specification's JSON Schema. What a container or a systemd unit would start —
the entrypoint and command, the environment, the health check — is read from
the files (:mod:`tests.deployfiles`) and started here as it is, against a real
PostgreSQL database, with only hosts, ports and mounted paths pointed at this
machine. The API answers ``/healthz``, the health check passes against it, and
jobs submitted through the API are run by both workers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from jobyard.worker.loop import stop_within
from tests.databases import Servers
from tests.deployfiles import (
    COMPOSE,
    DOCKERFILE,
    ROOT,
    SYSTEMD,
    Launch,
    compose_services,
    image_default,
    localize,
    read_compose,
    read_env_file,
    read_image,
    read_unit,
    unit_launch,
)
from tests.harness import ADMIN, free_port, wait_for

BIN = Path(sys.executable).parent
ENV_FILE = SYSTEMD / "jobyard.env.example"
ENV_FILES = {"/etc/jobyard/jobyard.env": ENV_FILE}  # where the docs install it


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return str(path)


# -- static checks ---------------------------------------------------------------
def test_the_dockerfile_passes_hadolint() -> None:
    found = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stdout + found.stderr


def test_the_compose_file_validates_against_the_compose_specification() -> None:
    found = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stdout + found.stderr


def test_the_compose_file_refuses_to_start_without_an_admin_password() -> None:
    with pytest.raises(KeyError, match="JOBYARD_ADMIN_PASSWORD"):
        compose_services(read_image(), environ={})


def test_the_image_and_the_compose_file_agree() -> None:
    """The port the image serves on is the one published; the API is what workers wait for."""
    image = read_image()
    whole = read_compose()
    compose = whole["services"]
    assert image.entrypoint == ["jobyard"]
    assert compose["api"]["ports"] == [f"{image.env['JOBYARD_PORT']}:{image.env['JOBYARD_PORT']}"]
    assert compose["api"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("worker-1", "worker-2"):
        assert compose[name]["depends_on"]["api"]["condition"] == "service_healthy"
    assert "pgdata:/var/lib/postgresql/data" in compose["db"]["volumes"]
    assert "pgdata" in whole["volumes"]


@pytest.mark.postgres
def test_the_database_health_check_runs(servers: Servers) -> None:
    """The ``db`` service's check, against this machine's PostgreSQL (by TCP, not the socket)."""
    servers.admin_url("postgres")  # skips, or fails under JOBYARD_REQUIRE_SERVICES, when down
    kind, *command = read_compose()["services"]["db"]["healthcheck"]["test"]
    assert kind == "CMD"
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed here")
    found = subprocess.run(
        [*command, "--host=127.0.0.1"], capture_output=True, text=True, check=False
    )
    assert found.returncode == 0, found.stdout + found.stderr
    assert "accepting connections" in found.stdout


def test_the_worker_unit_outlasts_the_drain() -> None:
    """systemd must not SIGKILL a draining worker before it handed its jobs back."""
    unit = read_unit(SYSTEMD / "jobyard-worker@.service")
    env = unit_launch(SYSTEMD / "jobyard-worker@.service", ENV_FILES, instance="1").env
    drain = float(env["JOBYARD_DRAIN_TIMEOUT"].removesuffix("s"))
    grace = float(env["JOBYARD_KILL_GRACE"].removesuffix("s"))
    # However the database behaves (an outage as it stops): every wait of the stop.
    assert float(unit["TimeoutStopSec"][0]) > stop_within(drain, grace)
    assert unit["KillMode"] == ["mixed"]
    assert unit["Restart"] == ["on-failure"]


@pytest.mark.parametrize("unit", ["jobyard.service", "jobyard-worker@.service"])
def test_systemd_analyze_verifies_the_units(unit: str, tmp_path: Path) -> None:
    """The units as installed: the binary and the environment file where the docs put them."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    text = (SYSTEMD / unit).read_text()
    text = text.replace("/opt/jobyard/bin/jobyard", str(BIN / "jobyard"))
    text = text.replace("/etc/jobyard/jobyard.env", str(ENV_FILE))
    name = unit.replace("@", "@1") if "@" in unit else unit
    (tmp_path / name).write_text(text)
    found = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stdout + found.stderr
    assert "jobyard" not in found.stderr, found.stderr  # no warning about our unit


# -- the command lines, run ---------------------------------------------------------
class Processes:
    """The processes a test starts, each with its own log; stopped by SIGTERM at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, launch: Launch) -> subprocess.Popen[bytes]:
        # A container's environment is the image's and the service's alone; the shared
        # machine asks for no pre-started Python children (these jobs are commands).
        env = {"PATH": os.environ["PATH"], "HOME": str(self.workdir), "JOBYARD_PYTHON_POOL": "0"}
        with (self.workdir / f"{launch.name}.log").open("wb") as log:
            proc = subprocess.Popen(
                launch.argv,
                cwd=self.workdir,
                env=env | launch.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.started.append((launch.name, proc))
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.workdir.glob("*.log"))

    def stop_all(self) -> None:
        for _, proc in reversed(self.started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in self.started:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture
def postgres_url(servers: Servers) -> Iterator[str]:
    """A new empty PostgreSQL database: the deployment migrates it itself, as on a first start."""
    with servers.scratch_database("postgres") as url:
        yield url


@contextmanager
def answering(
    url: str, proc: subprocess.Popen[bytes], processes: Processes
) -> Iterator[httpx.Client]:
    """A client of the API at ``url``, once it answers ``/healthz``."""
    client = httpx.Client(base_url=url, auth=ADMIN, timeout=30)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the API exited with {proc.returncode}:\n{processes.logs()}")
        try:
            return client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    with client:
        wait_for(healthy, timeout=90, what=f"{url}/healthz")
        yield client


def health_check(port: int) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK command as Docker runs it in the container."""
    command = read_image().healthcheck
    assert command[0] == "python"
    env = {"PATH": os.environ["PATH"], "JOBYARD_PORT": str(port)}
    return subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, text=True, check=False
    )


def test_the_image_default_serves_and_passes_its_health_check(
    processes: Processes, tmp_path: Path
) -> None:
    port = free_port()
    image = read_image()
    assert image.env["JOBYARD_DATABASE_URL"].startswith(f"sqlite:///{image.workdir}/")
    ours = f"sqlite:///{tmp_path / 'jobyard.db'}"
    launch = localize(image_default(image), database_url=ours, port=port)
    assert launch.argv[1:] == ["serve"]
    proc = processes.start(launch)
    with answering(f"http://127.0.0.1:{port}", proc, processes) as client:
        assert client.get("/healthz").json()["worker"] is not None  # all in one: it runs jobs
    found = health_check(port)
    assert found.returncode == 0, found.stderr


def test_the_health_check_fails_when_nothing_answers() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: refused
        found = health_check(port)
    assert found.returncode != 0
    assert "Connection refused" in found.stderr


@dataclass(frozen=True)
class Stack:
    """An API node and its workers as a deployment starts them, pointed at this machine."""

    api: Launch
    workers: list[Launch]
    health_checked: bool  # the image's HEALTHCHECK runs against the API


def compose_stack(database_url: str) -> Stack:
    services = compose_services(read_image(), {"JOBYARD_ADMIN_PASSWORD": ADMIN[1]})
    api = services.pop("api")
    assert api.argv[1:] == ["serve", "--no-worker"]
    port = free_port()
    api = localize(api, database_url=database_url, port=port)
    workers = [localize(s, database_url=database_url, port=free_port()) for s in services.values()]
    return Stack(api, workers, health_checked=True)


def systemd_stack(database_url: str) -> Stack:
    assert read_env_file(ENV_FILE)["JOBYARD_CONFIG"] == "/etc/jobyard/jobyard.yaml"
    mounts = {"/etc/jobyard": ROOT / "examples"}  # the configuration where the docs put it
    api = unit_launch(SYSTEMD / "jobyard.service", ENV_FILES)
    assert api.argv == ["/opt/jobyard/bin/jobyard", "serve", "--no-worker"]
    host = socket.gethostname()
    workers = [
        unit_launch(SYSTEMD / "jobyard-worker@.service", ENV_FILES, instance=i, host=host)
        for i in ("1", "2")
    ]

    def here(launch: Launch) -> Launch:
        launch = replace(launch, mounts=mounts)
        return localize(launch, database_url=database_url, port=free_port())

    # The admin password comes from the first start only (docs/deploy.md#access-and-tls).
    api = here(api)
    api = replace(api, env=api.env | {"JOBYARD_ADMIN_PASSWORD": ADMIN[1]})
    return Stack(api, [here(w) for w in workers], health_checked=False)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("stack", [compose_stack, systemd_stack], ids=["compose", "systemd"])
def test_the_deployment_runs_jobs_on_both_workers(
    stack: Callable[[str], Stack], postgres_url: str, processes: Processes
) -> None:
    deployment = stack(postgres_url)
    api, workers = deployment.api, deployment.workers
    url = f"http://127.0.0.1:{api.env['JOBYARD_PORT']}"
    with answering(url, processes.start(api), processes) as client:
        if deployment.health_checked:
            found = health_check(int(api.env["JOBYARD_PORT"]))
            assert found.returncode == 0, found.stderr
        for worker in workers:
            processes.start(worker)
        names = wait_for(lambda: _workers(client, len(workers)), what="both workers")
        # One worker takes at most its concurrency: the rest must go to the other.
        count = int(workers[0].env.get("JOBYARD_CONCURRENCY", "4")) + 2
        ids = [_submit(client) for _ in range(count)]
        ran_on = {_finished(client, job_id) for job_id in ids}
        assert ran_on == names, processes.logs()


def _workers(client: httpx.Client, count: int) -> set[str] | None:
    items = client.get("/api/v1/workers").json()["items"]
    names = {w["name"] for w in items if w["state"] == "running"}
    return names if len(names) == count else None


def _submit(client: httpx.Client) -> int:
    response = client.post("/api/v1/jobs", json={"type": "sleep", "args": {"seconds": 2}})
    assert response.status_code == 201, response.text
    job_id: int = response.json()["id"]
    return job_id


def _finished(client: httpx.Client, job_id: int) -> str:
    def ended() -> dict[str, str] | None:
        job: dict[str, str] = client.get(f"/api/v1/jobs/{job_id}").json()
        return job if job["state"] in ("succeeded", "failed", "killed") else None

    job = wait_for(ended, timeout=90, what=f"job {job_id} to end")
    assert job["state"] == "succeeded", job
    return job["worker"]
