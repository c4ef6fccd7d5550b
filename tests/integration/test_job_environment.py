"""A job sees none of the worker's secrets, and runs as its type's ``user``.

On a runner (commands, Python jobs and their subprocesses), then through a
real server started with secrets in its environment.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import jobyard
from jobyard.models import JobSpec
from jobyard.runner.local import Runner
from tests.accounts import TEST_USER, unprivileged_user
from tests.databases import BACKENDS
from tests.harness import FIXTURES, Launcher, Server, shared_server, wait_for
from tests.processes import TIMEOUT
from tests.sinks import Recorder, finish, tok

SECRETS = {
    "JOBYARD_SECRET_PROBE": "probe-value",
    "SMTP_PASSWORD": "hunter2",
    "HOOK_SECRET": "webhook-secret",
}
PASSED = {"PASSED_VAR": "passed", "PASSED_PREFIX_ONE": "one"}
PASS_ENV = ["PASSED_VAR", "PASSED_PREFIX_*"]
# What docs/job-types.md promises a job gets of the worker's environment.
ALLOWED = {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "TZ", "TMPDIR"}
IDENTITY = {"JOBYARD_JOB_ID", "JOBYARD_JOB_TOKEN", "JOBYARD_WORKER_PID"}
VARIABLE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")


def variables(lines: list[str], prefix: str = "") -> dict[str, str]:
    """``NAME=value`` lines (after ``prefix``) as a mapping."""
    found = {}
    for line in lines:
        if line.startswith(prefix) and (match := VARIABLE.fullmatch(line[len(prefix) :])):
            found[match[1]] = match[2]
    return found


def worker_allowed(environ: dict[str, str]) -> set[str]:
    """The names of ``environ`` that every job may see."""
    return {name for name in environ if name in ALLOWED or name.startswith("LC_")}


def check_clean(seen: dict[str, str], job_id: int, worker: dict[str, str]) -> None:
    expected = worker_allowed(worker) | set(PASSED) | {"TYPE_VAR"} | IDENTITY
    assert set(seen) == expected
    assert not set(seen) & set(SECRETS)
    assert seen["TYPE_VAR"] == "from-the-type"
    assert seen["JOBYARD_JOB_ID"] == str(job_id)
    assert seen["PASSED_VAR"] == "passed"
    assert seen["PASSED_PREFIX_ONE"] == "one"
    assert seen["PATH"] == worker["PATH"]


# -- on a runner --------------------------------------------------------------------
@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    for name, value in (SECRETS | PASSED).items():
        monkeypatch.setenv(name, value)
    runner = Runner(
        python_pool=1, python_path=[str(FIXTURES)], preload=["isolation_jobs"], pass_env=PASS_ENV
    )
    wait_for(lambda: runner.pool.stats()["idle"] == 1, TIMEOUT)
    yield runner
    runner.close()


def test_a_command_sees_only_its_clean_environment(runner: Runner) -> None:
    sink = Recorder()
    spec = JobSpec(argv=["env"], env={"TYPE_VAR": "from-the-type"})
    assert finish(runner.start(5, tok("t-env-cmd"), spec, sink)).succeeded
    seen = variables(sink.lines("stdout"))
    check_clean(seen, 5, dict(os.environ))
    assert seen["JOBYARD_JOB_TOKEN"] == tok("t-env-cmd")


def test_a_python_job_and_its_subprocesses_see_only_the_clean_environment(runner: Runner) -> None:
    [child] = runner.pool.idle_pids()
    started = Path(f"/proc/{child}/environ").read_bytes()
    assert not any(name.encode() in started for name in SECRETS)  # not even the child has them
    sink = Recorder()
    spec = JobSpec(python="isolation_jobs:environment", env={"TYPE_VAR": "from-the-type"})
    assert finish(runner.start(6, tok("t-env-py"), spec, sink)).succeeded
    lines = sink.lines("stdout")
    check_clean(variables(lines, "job "), 6, dict(os.environ))
    check_clean(variables(lines, "sub "), 6, dict(os.environ))


# -- as another user ----------------------------------------------------------------
@pytest.fixture(scope="module")
def user() -> pwd.struct_passwd:
    return unprivileged_user()


@pytest.fixture(scope="module")
def open_dir() -> Iterator[Path]:
    """A directory the test user can read (pytest's are its owner's only), with the jobs."""
    path = Path(tempfile.mkdtemp(prefix="jobyard-user-jobs-"))
    path.chmod(0o755)
    shutil.copy(FIXTURES / "isolation_jobs.py", path)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def user_runner() -> Iterator[Runner]:
    runner = Runner(python_pool=0)
    yield runner
    runner.close()


def test_a_command_runs_as_its_types_user(user: pwd.struct_passwd, user_runner: Runner) -> None:
    sink = Recorder()
    script = 'id -u; id -g; id -G; echo "$HOME $USER $LOGNAME"'
    spec = JobSpec(argv=["sh", "-c", script], user=TEST_USER)
    result = finish(user_runner.start(1, tok("t-user-cmd"), spec, sink))
    assert result.succeeded, sink.lines("stderr")
    uid, gid, groups, names = sink.lines("stdout")
    assert (int(uid), int(gid)) == (user.pw_uid, user.pw_gid)
    assert {int(g) for g in groups.split()} == set(os.getgrouplist(TEST_USER, user.pw_gid))
    assert names == f"{user.pw_dir} {TEST_USER} {TEST_USER}"


def test_a_user_that_does_not_exist_fails_the_start(user_runner: Runner) -> None:
    sink = Recorder()
    spec = JobSpec(argv=["true"], user="no-such-user-here")
    result = finish(user_runner.start(4, tok("t-nouser"), spec, sink))
    assert (result.exit_code, result.spawn_failed) == (126, True)
    assert result.error == "spawn failed: user 'no-such-user-here' does not exist on this host"
    assert sink.lines("system") == [result.error]


@pytest.fixture(scope="module")
def python(user: pwd.struct_passwd) -> tuple[str, dict[str, str]]:
    """An interpreter the test user may run, and an environment in which it finds jobyard.

    Ours may live where that user cannot go (under ``/root``): the system's of the
    same version then stands in, with our source and libraries on its path.
    """
    libraries = sysconfig.get_paths()
    paths = {str(Path(jobyard.__file__).parents[1]), libraries["purelib"], libraries["platlib"]}
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(sorted(paths))}
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/python{version}"):
        try:
            probe = run_as(user, [candidate, "-c", "import jobyard.runner.local"], env)
        except OSError:
            continue
        if probe.returncode == 0:
            return candidate, env
    pytest.skip(f"no Python {version} here that {TEST_USER} may run")


def run_as(
    user: pwd.struct_passwd | None, argv: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (as ``user``, unless None) from ``/``, with only ``env``."""
    switch = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    return subprocess.run(
        argv, cwd="/", env=env, capture_output=True, text=True, timeout=120, **switch
    )


# Runs Python jobs on a runner of its own, in an interpreter the test user may run
# too: prints, for each spec given, the job's output and how it ended.
RUN_JOBS = """
import json, sys, time
import psutil
from jobyard.models import JobSpec
from jobyard.runner.local import Runner


class Sink:
    def __init__(self):
        self.lines = []

    def log(self, stream, line):
        self.lines.append([stream, line])

    def __getattr__(self, name):
        return lambda *args: None


def gone(pid):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.01)
    return False


runner = Runner(python_pool=1, python_path=[sys.argv[1]], pass_env=["PYTHONPATH"])
assert runner.pool.wait_ready(60)
for spec in json.loads(sys.argv[2]):
    sink = Sink()
    shared = runner.pool.idle_pids()
    execution = runner.start(1, "t-user-" + str(len(shared)), JobSpec.from_dict(spec), sink)
    result = execution.wait(60)
    print(json.dumps({"pid": execution.pid, "shared": shared, "error": result.error,
                      "lines": sink.lines, "after": runner.pool.idle_pids(),
                      "gone": gone(execution.pid) if execution.pid not in shared else None}),
          flush=True)
runner.close()
"""


def run_jobs(
    python: tuple[str, dict[str, str]],
    as_user: pwd.struct_passwd | None,
    folder: Path,
    *specs: JobSpec,
) -> list[dict[str, Any]]:
    """Run ``specs`` with :data:`RUN_JOBS` (as ``as_user``), jobs imported from ``folder``."""
    interpreter, env = python
    argv = [interpreter, "-c", RUN_JOBS, str(folder), json.dumps([s.to_dict() for s in specs])]
    done = run_as(as_user, argv, env)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_a_python_job_runs_as_its_types_user_on_a_child_of_its_own(
    user: pwd.struct_passwd, python: tuple[str, dict[str, str]], open_dir: Path
) -> None:
    as_user = JobSpec(python="isolation_jobs:whoami", user=TEST_USER)
    as_worker = JobSpec(python="isolation_jobs:whoami")
    theirs, ours = run_jobs(python, None, open_dir, as_user, as_worker)
    assert theirs["error"] is None, theirs["lines"]
    expected = f"{user.pw_uid} {user.pw_gid} {user.pw_dir} {TEST_USER} {TEST_USER}"
    assert theirs["lines"] == [["stdout", expected], ["stdout", str(user.pw_uid)]]
    assert len(theirs["shared"]) == 1
    assert theirs["pid"] not in theirs["shared"]  # a child of its own, not the shared one
    assert theirs["gone"]  # ... which ended with the job
    assert theirs["after"] == theirs["shared"]
    assert ours["error"] is None, ours["lines"]
    assert ours["pid"] in ours["shared"]
    assert ours["lines"][1] == ["stdout", str(os.geteuid())]  # the shared child is still ours


def test_a_worker_not_running_as_root_cannot_switch_users(
    user: pwd.struct_passwd, python: tuple[str, dict[str, str]]
) -> None:
    specs = (JobSpec(argv=["true"], user="root"), JobSpec(python="os:getcwd", user="root"))
    error = (
        f"spawn failed: cannot run as user 'root': this worker runs as {TEST_USER!r}, "
        "and only a worker running as root can start jobs as another user"
    )
    for ended in run_jobs(python, user, Path("/"), *specs):
        assert ended["error"] == error
        assert ended["lines"] == [["system", error]]


# Starts a runner (sealed, unless told not to) with a secret in its environment, as
# a worker would be, and prints what its command job could read of the worker's.
PEEK = """
import sys
import jobyard.runner.local as local
from jobyard.models import JobSpec

if sys.argv[1] == "unsealed":
    local.seal = lambda: None
lines = []
class Sink:
    def log(self, stream, line):
        lines.append(line)
    def __getattr__(self, name):
        return lambda *args: None
runner = local.Runner(python_pool=0)
spec = JobSpec(argv=["sh", "-c", "tr '\\\\0' '\\\\n' < /proc/$PPID/environ"])
runner.start(1, "t-peek", spec, Sink()).wait(60)
runner.close()
print("\\n".join(lines))
"""


@pytest.mark.parametrize("sealed", [True, False])
def test_a_job_of_the_workers_user_cannot_read_the_workers_environment(
    user: pwd.struct_passwd, python: tuple[str, dict[str, str]], sealed: bool
) -> None:
    interpreter, env = python
    argv = [interpreter, "-c", PEEK, "sealed" if sealed else "unsealed"]
    done = run_as(user, argv, env | {"JOBYARD_SECRET_PROBE": "s3cr3t"})
    assert done.returncode == 0, done.stderr
    # Unsealed, the job reads the worker's environment: the probe can fail.
    assert ("JOBYARD_SECRET_PROBE=s3cr3t" in done.stdout.splitlines()) is not sealed


# -- through a server ---------------------------------------------------------------
server = shared_server(
    backends=[BACKENDS[0]], config=FIXTURES / "isolation.yaml", env=SECRETS | PASSED
)


def stdout_of(server: Server, job_id: int) -> list[str]:
    return [item["line"] for item in server.logs(job_id) if item["stream"] == "stdout"]


def test_a_servers_jobs_see_none_of_its_environment(server: Server) -> None:
    worker = dict(os.environ)  # the server's, but for the secrets and its own settings
    command = server.submit("env-command")
    python = server.submit("env-python")
    server.wait_state(command["id"], "succeeded")
    server.wait_state(python["id"], "succeeded")
    check_clean(variables(stdout_of(server, command["id"])), command["id"], worker)
    lines = stdout_of(server, python["id"])
    check_clean(variables(lines, "job "), python["id"], worker)
    check_clean(variables(lines, "sub "), python["id"], worker)


def test_api_job_types_false_refuses_every_type_write(server: Server) -> None:
    before = server.client.get("/api/v1/job-types").json()
    body = {"name": "sneaky", "command": ["true"]}
    writes = [
        ("POST", "/api/v1/job-types", body),
        ("POST", "/api/v1/job-types", {**body, "name": "env-command"}),
        ("PUT", "/api/v1/job-types/sneaky", body),
        ("DELETE", "/api/v1/job-types/sneaky", None),
        ("DELETE", "/api/v1/job-types/env-command", None),
    ]
    for method, path, definition in writes:
        response = server.client.request(method, path, json=definition)
        assert response.status_code == 403, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert (problem["status"], problem["title"]) == (403, "Forbidden")
        assert "configured with api_job_types: false" in problem["detail"]
    assert server.client.get("/api/v1/job-types").json() == before
    assert server.client.get("/api/v1/job-types/sneaky").status_code == 404
    assert server.client.get("/api/v1/job-types/env-command").status_code == 200


def test_a_servers_job_runs_as_its_types_user(
    user: pwd.struct_passwd, sqlite_url: str, launch: Launcher, tmp_path: Path
) -> None:
    config = tmp_path / "users.yaml"
    config.write_text(
        "job_types:\n"
        f"  as-user: {{command: [id, -u], user: {TEST_USER}}}\n"
        "  as-server: {command: [id, -u]}\n"
    )
    server = launch(sqlite_url, config=config)
    as_user = server.submit("as-user")
    as_server = server.submit("as-server")
    server.wait_state(as_user["id"], "succeeded")
    server.wait_state(as_server["id"], "succeeded")
    assert stdout_of(server, as_user["id"]) == [str(user.pw_uid)]
    assert stdout_of(server, as_server["id"]) == [str(os.geteuid())]
    shown = server.client.get("/api/v1/job-types/as-user").json()
    assert shown["definition"]["user"] == TEST_USER
