"""The Slurm executor against a real one-node Slurm cluster (tests/slurm/start-cluster.sh).

One ``jobyard serve`` on SQLite runs every job of the module on Slurm; the tests
that crash it or restart slurmctld come last. Skipped with the reason when the
cluster cannot start, unless ``JOBYARD_REQUIRE_SERVICES`` is set.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from jobyard.models import JobSpec
from jobyard.runner.environment import JobEnvironment
from jobyard.runner.slurm import SlurmExecutor
from jobyard.runner.slurm.lost import cancel_recorded
from tests.harness import Launcher, Server, run_in, start_run, wait_for
from tests.sinks import Recorder

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

START = Path(__file__).parent.parent / "slurm" / "start-cluster.sh"
DOCS = Path(__file__).parents[2] / "docs" / "executors.md"
CONFIG = """
queues:
  default: {{}}
  hpc:
    executor: {{slurm: {{workdir: {workdir}, time: 10m}}}}
job_types:
  s-echo:
    command:
      - sh
      - -c
      - |
        echo first
        echo '##jobyard progress 0.5 half'
        echo '##jobyard metric rows 7'
        echo to-err >&2
        echo "$1"
        echo last
      - sh
      - "{{text}}"
    params:
      text: {{type: string, default: hello}}
    executor: {{slurm: {{workdir: {workdir}, cpus: 1, mem: 64MiB, time: 5m}}}}
  s-fail:
    command: ["sh", "-c", "echo failing; exit {{code}}"]
    params:
      code: {{type: integer, default: 3}}
    retries: {{max: 1, backoff: fixed, initial: 0.2s}}
    executor: {{slurm: {{workdir: {workdir}}}}}
  s-sleep:
    command: ["sh", "-c", "echo started; sleep {{seconds}} & wait; echo woke"]
    params:
      seconds: {{type: integer, default: 60}}
    kill_grace: 2s
    executor: {{slurm: {{workdir: {workdir}}}}}
  s-timeout:
    command: ["sleep", "60"]
    timeout: 2s
    kill_grace: 1s
    executor: {{slurm: {{workdir: {workdir}}}}}
  s-lost:
    command:
      - sh
      - -c
      - echo attempt; if [ -e "$1" ]; then exit 0; fi; touch "$1"; sleep 60
      - sh
      - "{{marker}}"
    params:
      marker: {{type: string, required: true}}
    retries: {{max: 1, backoff: fixed, initial: 0.2s}}
    executor: {{slurm: {{workdir: {workdir}}}}}
  s-ticks:
    command: ["sh", "-c", "for i in $(seq 1 30); do echo tick $i; sleep 0.2; done"]
    executor: {{slurm: {{workdir: {workdir}}}}}
  s-env:
    command: ["sh", "-c", 'echo "$SBATCH_PARTITION|$ODD|$JOBYARD_JOB_ID"']
    env:
      SBATCH_PARTITION: no-such-partition
      ODD: "it's $(not run)"
    executor: {{slurm: {{workdir: {workdir}}}}}
  s-queued:
    command: ["echo", "on the queue's executor"]
    queue: hpc
  s-later:
    command: ["echo", "at last"]
    executor: {{slurm: {{workdir: {workdir}, options: ["--begin=now+3600"]}}}}
workflows:
  chain:
    args: {{code: 4}}
    nodes:
      first: {{type: s-echo, args: {{text: first-node}}}}
      bad: {{type: s-fail, depends_on: [first]}}
      after: {{type: s-echo, args: {{text: after-node}}, depends_on: [bad]}}
"""


def _with_docs_example(text: str) -> dict[str, Any]:
    """The module's configuration with the example of docs/executors.md added to it."""
    data: dict[str, Any] = yaml.safe_load(text)
    doc = DOCS.read_text().split("```yaml\n")[1].split("```")[0]
    for section, entries in yaml.safe_load(doc).items():
        data.setdefault(section, {}).update(entries)
    return data


def _cluster() -> str | None:
    """None when the cluster is up, else why it is not."""
    if os.geteuid() != 0:
        return "the one-node Slurm cluster runs as root"
    if shutil.which("apt-get") is None and shutil.which("sbatch") is None:
        return "Slurm is not installed and apt-get is missing"
    done = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        return f"the Slurm cluster did not start: {done.stderr.strip()[-500:]}"
    return None


@dataclass
class Yard:
    """The module's server, which a test may crash and start again."""

    launch: Launcher
    database_url: str
    config: Path
    workdir: Path
    server: Server

    def restart(self, *, crash: bool) -> Server:
        self.server.crash() if crash else self.server.stop()
        self.server = self.launch(self.database_url, config=self.config, env=ENV)
        return self.server


ENV = {
    "JOBYARD_CONCURRENCY": "6",
    "JOBYARD_KILL_GRACE": "2",
    "JOBYARD_PYTHON_POOL": "0",  # no Python job here: no child to start
    # A restart on a loaded machine may take a while: the crashed server's jobs must
    # still be its own (lease unexpired) when the new one adopts them.
    "JOBYARD_LEASE_TIMEOUT": "120",
}


@pytest.fixture(scope="module")
def yard(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Yard]:
    reason = _cluster()
    if reason is not None:
        if os.environ.get("JOBYARD_REQUIRE_SERVICES"):
            pytest.fail(reason)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("slurm")
    workdir = root / "shared"
    config = root / "jobyard.yaml"
    config.write_text(yaml.safe_dump(_with_docs_example(CONFIG.format(workdir=workdir))))
    shutil.copyfile(sqlite_template, root / "jobs.db")
    url = f"sqlite:///{root / 'jobs.db'}"
    launch = Launcher(root)
    try:
        yield Yard(launch, url, config, workdir, launch(url, config=config, env=ENV))
    finally:
        launch.stop_all()


@pytest.fixture
def server(yard: Yard) -> Server:
    return yard.server


def slurm_id(server: Server, job_id: int) -> str:
    def probe() -> str | None:
        ref = server.job(job_id)["details"].get("slurm_job_id")
        return str(ref) if ref else None

    return wait_for(probe, 60, what=f"the Slurm id of job {job_id}")


def squeue(ref: str) -> str:
    """The Slurm state of ``ref`` while it is in the queue; "" once it left it."""
    done = subprocess.run(
        ["squeue", "-h", "-j", ref, "-o", "%T"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def job_processes(job_id: int) -> list[psutil.Process]:
    """The processes Slurm runs for jobyard job ``job_id`` (found by their environment)."""
    found = []
    for process in psutil.process_iter():
        try:
            env = process.environ()
        except (psutil.Error, OSError):
            continue
        if env.get("JOBYARD_JOB_ID") == str(job_id) and "SLURM_JOB_ID" in env:
            found.append(process)
    return found


def lines(server: Server, job_id: int) -> list[tuple[str, str]]:
    return [(line["stream"], line["line"]) for line in server.logs(job_id)]


def test_a_job_runs_on_slurm_with_its_output_progress_and_metrics(server: Server) -> None:
    job = server.submit("s-echo", args={"text": "it's; $(not a shell)"})
    done = server.wait_state(job["id"], "succeeded", "failed")
    assert done["state"] == "succeeded", done
    assert done["exit_code"] == 0
    assert done["details"]["executor"] == "slurm"
    assert done["progress"] == {"fraction": 0.5, "message": "half"}
    assert done["metrics"] == {"rows": 7.0}
    output = [entry for entry in lines(server, job["id"]) if entry[0] != "system"]
    assert [line for stream, line in output if stream == "stdout"] == [
        "first",
        "it's; $(not a shell)",
        "last",
    ]
    assert ("stderr", "to-err") in output
    system = [line for stream, line in lines(server, job["id"]) if stream == "system"]
    assert any(line.startswith("submitted to Slurm as job") for line in system)


def test_the_example_of_the_docs_runs(server: Server) -> None:
    simulate = server.submit("simulate", args={"case": "a-1"})
    summary = server.submit("summary")
    local = server.submit("local-check")
    done = server.wait_state(simulate["id"], "succeeded", "failed")
    assert done["state"] == "succeeded", done
    assert ("stdout", "case a-1") in lines(server, simulate["id"])
    assert done["progress"]["fraction"] == 1.0
    assert server.wait_state(summary["id"], "succeeded")["details"]["executor"] == "slurm"
    assert server.wait_state(local["id"], "succeeded")["details"] == {}


def test_a_type_created_through_the_api_runs_on_slurm_and_bad_options_are_a_422(
    yard: Yard,
) -> None:
    server = yard.server
    slurm = {"workdir": str(yard.workdir), "cpus": 1, "time": "5m"}
    body = {"name": "api-slurm", "command": ["echo", "from the api"], "executor": {"slurm": slurm}}
    created = server.client.post("/api/v1/job-types", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["definition"]["executor"] == {
        "slurm": {"workdir": str(yard.workdir), "cpus": 1, "time": 300.0}
    }
    job = server.submit("api-slurm")
    done = server.wait_state(job["id"], "succeeded", "failed")
    assert (done["state"], done["details"]["executor"]) == ("succeeded", "slurm")
    assert ("stdout", "from the api") in lines(server, job["id"])
    bad = {"cpus": 0, "options": ["--output=/etc/x"], "workdir": "relative"}
    refused = server.client.post(
        "/api/v1/job-types",
        json={"name": "bad-slurm", "command": ["true"], "executor": {"slurm": bad}},
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    fields = {error["field"] for error in refused.json()["errors"]}
    assert fields == {
        "executor.slurm.cpus",
        "executor.slurm.options.0",
        "executor.slurm.workdir",
    }


def test_a_types_env_reaches_the_job_but_not_sbatch(server: Server) -> None:
    job = server.submit("s-env")
    done = server.wait_state(job["id"], "succeeded", "failed")
    assert done["state"] == "succeeded", done  # sbatch did not read SBATCH_PARTITION
    stdout = [line for stream, line in lines(server, job["id"]) if stream == "stdout"]
    assert stdout == [f"no-such-partition|it's $(not run)|{job['id']}"]


def test_a_failing_job_keeps_its_exit_code_and_is_retried(server: Server) -> None:
    job = server.submit("s-fail", args={"code": 5})
    done = server.wait_state(job["id"], "failed", "succeeded")
    assert (done["state"], done["exit_code"], done["reason"]) == ("failed", 5, "exit_code")
    assert done["attempt"] == 2  # retries: {max: 1}
    assert [line for stream, line in lines(server, job["id"]) if stream == "stdout"] == [
        "failing",
        "failing",
    ]


def test_a_queue_executor_sends_its_types_to_slurm(server: Server) -> None:
    job = server.submit("s-queued")
    done = server.wait_state(job["id"], "succeeded", "failed")
    assert done["state"] == "succeeded"
    assert done["details"]["executor"] == "slurm"


def test_kill_ends_the_slurm_job_and_its_processes(server: Server) -> None:
    job = server.submit("s-sleep")
    ref = slurm_id(server, job["id"])
    processes = wait_for(lambda: job_processes(job["id"]), 60, what="the job's processes")
    server.act(job["id"], "kill", expect=202)
    killed = server.wait_state(job["id"], "killed", "failed", "succeeded")
    assert killed["state"] == "killed"
    assert killed["reason"] == "killed"
    wait_for(lambda: squeue(ref) == "", 30, what=f"Slurm job {ref} to leave the queue")
    wait_for(lambda: all(not p.is_running() for p in processes), 30, what="no survivor")


def test_a_job_cancelled_in_slurm_ends_killed_with_the_reason(server: Server) -> None:
    job = server.submit("s-sleep")
    ref = slurm_id(server, job["id"])
    server.wait_state(job["id"], "running")
    subprocess.run(["scancel", ref], check=True)
    ended = server.wait_state(job["id"], "killed", "failed", "succeeded")
    # On a loaded machine the cancel may come before the executor released the held job:
    # it once ended failed to start then (the executor's test below holds that moment).
    why = (ended["error"], [line["line"] for line in server.logs(job["id"])])
    assert (ended["state"], ended["reason"]) == ("killed", "killed"), why
    assert "cancelled in Slurm outside jobyard" in ended["error"]


def test_pause_suspends_the_processes_and_resume_continues(server: Server) -> None:
    job = server.submit("s-sleep", args={"seconds": 60})
    ref = slurm_id(server, job["id"])
    processes = wait_for(lambda: job_processes(job["id"]), 60, what="the job's processes")
    wait_for(lambda: squeue(ref) == "RUNNING", 30, what="Slurm to run it")
    server.act(job["id"], "pause", expect=202)
    assert server.wait_state(job["id"], "paused")["state"] == "paused"
    wait_for(lambda: squeue(ref) == "STOPPED", 30, what="Slurm to stop it")

    def stopped() -> bool:
        return all(p.status() == psutil.STATUS_STOPPED for p in processes)

    wait_for(stopped, 30, what="every process in state T")
    server.act(job["id"], "resume", expect=202)
    server.wait_state(job["id"], "running")
    wait_for(lambda: squeue(ref) == "RUNNING", 30, what="Slurm to resume it")
    wait_for(lambda: not any(p.status() == psutil.STATUS_STOPPED for p in processes), 30)
    server.act(job["id"], "kill", expect=202)
    assert server.wait_state(job["id"], "killed")["state"] == "killed"


def test_a_paused_job_is_killed_with_no_survivor(server: Server) -> None:
    job = server.submit("s-sleep", args={"seconds": 60})
    ref = slurm_id(server, job["id"])
    processes = wait_for(lambda: job_processes(job["id"]), 60, what="the job's processes")
    wait_for(lambda: squeue(ref) == "RUNNING", 30, what="Slurm to run it")
    server.act(job["id"], "pause", expect=202)
    wait_for(lambda: squeue(ref) == "STOPPED", 30, what="Slurm to stop it")
    server.act(job["id"], "kill", expect=202)
    assert server.wait_state(job["id"], "killed", "failed")["state"] == "killed"
    wait_for(lambda: squeue(ref) == "", 30, what=f"Slurm job {ref} to leave the queue")
    wait_for(lambda: all(not p.is_running() for p in processes), 30, what="no survivor")


def test_a_job_pending_in_slurm_is_held_at_once_when_paused(server: Server) -> None:
    # A signal to a pending job is refused by Slurm after a minute and more: it was tried
    # three times before the hold, and every later control (a kill too) waited behind it.
    job = server.submit("s-later")
    ref = slurm_id(server, job["id"])
    wait_for(lambda: squeue(ref) == "PENDING", 30, what="Slurm to queue it")
    server.wait_state(job["id"], "running")
    server.act(job["id"], "pause", expect=202)
    server.wait_state(job["id"], "paused")
    held = subprocess.run(
        ["squeue", "-h", "-j", ref, "-o", "%T %r"], capture_output=True, text=True, check=False
    )
    assert held.stdout.split()[0] == "PENDING"
    assert "Held" in held.stdout
    assert f"'--signal=STOP', '--full', '{ref}'" not in server.log()  # no signal tried
    server.act(job["id"], "resume", expect=202)
    server.wait_state(job["id"], "running")
    wait_for(lambda: "Held" not in squeue_reason(ref), 30, what="Slurm to release it")
    server.act(job["id"], "kill", expect=202)
    assert server.wait_state(job["id"], "killed")["state"] == "killed"
    wait_for(lambda: squeue(ref) == "", 30, what=f"Slurm job {ref} to leave the queue")


def squeue_reason(ref: str) -> str:
    done = subprocess.run(
        ["squeue", "-h", "-j", ref, "-o", "%r"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def test_a_held_job_reaches_slurm_only_once_started(server: Server) -> None:
    job = server.submit("s-echo", hold=True, args={"text": "held"})
    later = server.submit("s-queued")  # once it ran, the worker had its chance to claim
    assert server.wait_state(later["id"], "succeeded", "failed")["state"] == "succeeded"
    held = server.job(job["id"])
    assert held["state"] == "held"
    assert "slurm_job_id" not in held["details"]
    server.act(job["id"], "start", expect=200)
    done = server.wait_state(job["id"], "succeeded", "failed")
    assert done["state"] == "succeeded"
    assert ("stdout", "held") in lines(server, job["id"])


def test_a_slurm_job_of_the_same_name_that_is_not_ours_is_left_alone(
    server: Server, tmp_path: Path
) -> None:
    job = server.submit("s-echo", hold=True, args={"text": "mine"})
    script = tmp_path / "decoy.sh"
    script.write_text("#!/bin/sh\nexec sleep 120\n")
    decoy = subprocess.run(
        ["sbatch", "--parsable", f"--job-name=jobyard-{job['id']}", "--output=/dev/null", script],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        wait_for(lambda: squeue(decoy) == "RUNNING", 60, what="the decoy to run")
        server.act(job["id"], "start", expect=200)
        done = server.wait_state(job["id"], "succeeded", "failed")
        assert done["state"] == "succeeded", done
        assert done["details"]["slurm_job_id"] != decoy
        assert done["details"]["identity"].endswith(f":{job['id']}:1")
        assert squeue(decoy) == "RUNNING"  # another installation's job: not cancelled
    finally:
        subprocess.run(["scancel", decoy], check=False)


def test_an_earlier_attempts_job_is_cancelled_whatever_name_marked_it(
    yard: Yard, tmp_path: Path
) -> None:
    """A worker that spelled the database's URL otherwise (a driver, a port, an option), or
    an earlier release, marked it with another digest: the retry ran beside it."""
    script = tmp_path / "leftover.sh"
    script.write_text("#!/bin/sh\nexec sleep 120\n")
    job_id = 990004

    def leftover(install: str) -> str:
        argv = [
            "sbatch",
            "--parsable",
            "--hold",
            f"--job-name=jobyard-{job_id}",
            f"--comment=jobyard:{install}:{job_id}:1",
            "--output=/dev/null",
        ]
        return subprocess.run(
            [*argv, script], capture_output=True, text=True, check=True
        ).stdout.strip()

    former, other = leftover("spelled"), leftover("another")
    executor = SlurmExecutor(JobEnvironment(()), install="test", formerly=["spelled"])
    spec = JobSpec(argv=["true"], executor={"slurm": {"workdir": str(yard.workdir)}})
    try:
        execution = executor.start(job_id, f"w:{job_id}:2", spec, Recorder())
        wait_for(lambda: squeue(former) == "", 30, what="the former attempt's job to go")
        assert squeue(other) == "PENDING"  # another installation's: left alone
        result = wait_for(lambda: execution.wait(0.2), 60, what="the retry's end")
        assert result.exit_code == 0, result.error
    finally:
        executor.close()
        subprocess.run(["scancel", former, other], check=False)


class Unrecorded(Recorder):
    """A run whose store does not take the Slurm id."""

    def record(self, data: dict[str, Any]) -> bool:
        self.details(data)
        return False


def touching(yard: Yard, marker: Path) -> tuple[SlurmExecutor, JobSpec]:
    """An executor of its own, and a Slurm job that creates ``marker`` if it ever runs."""
    spec = JobSpec(argv=["touch", str(marker)], executor={"slurm": {"workdir": str(yard.workdir)}})
    return SlurmExecutor(JobEnvironment(()), install="test"), spec


def test_a_slurm_job_whose_id_cannot_be_recorded_never_runs(yard: Yard, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    executor, spec = touching(yard, marker)
    try:
        sink = Unrecorded()
        execution = executor.start(990001, "w:990001:1", spec, sink)
        result = execution.wait(0)
        assert result is not None
        assert result.spawn_failed
        assert "could not be recorded; the job was cancelled" in (result.error or "")
        [(details,)] = sink.of("details")
        ref = details["slurm_job_id"]
        wait_for(lambda: squeue(ref) == "", 30, what=f"Slurm job {ref} to leave the queue")
        shown = subprocess.run(
            ["scontrol", "-o", "show", "job", ref], capture_output=True, text=True, check=False
        ).stdout
        assert "JobState=CANCELLED" in shown or not shown
        assert "RunTime=00:00:00" in shown or not shown
        assert not marker.exists()
    finally:
        executor.close()


class CancelledOnRecord(Recorder):
    """A run whose Slurm job someone cancels just after its id is stored, before the
    executor releases it (the moment a user sees the id)."""

    def record(self, data: dict[str, Any]) -> bool:
        super().record(data)
        subprocess.run(["scancel", data["slurm_job_id"]], check=True)
        return True


def test_a_slurm_job_cancelled_before_its_release_ends_killed_not_failed_to_start(
    yard: Yard, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    executor, spec = touching(yard, marker)
    try:
        sink = CancelledOnRecord()
        execution = executor.start(990002, "w:990002:1", spec, sink)
        result = wait_for(lambda: execution.wait(0.2), 60, what="the cancelled job's end")
        assert not result.spawn_failed, result.error
        assert result.reason == "killed"
        assert result.error == "cancelled in Slurm outside jobyard"  # not the hold's reason
        assert not marker.exists()
    finally:
        executor.close()


def test_a_job_not_polled_yet_and_pending_in_slurm_is_cancelled_at_once(
    yard: Yard, tmp_path: Path
) -> None:
    """Before the first poll (a second after the submission, or after an adoption) a
    kill sent SIGTERM, which Slurm refuses a pending job only after a minute and more:
    three tries, then the cancel; the job stayed half a minute and more."""
    options = {"workdir": str(yard.workdir), "options": ["--begin=now+3600"]}
    spec = JobSpec(argv=["true"], executor={"slurm": options})
    executor = SlurmExecutor(JobEnvironment(()), install="test", poll_interval=3600)
    sink = Recorder()
    execution = executor.start(990005, "w:990005:1", spec, sink)
    [(details, *_)] = [event[1:] for event in sink.events if event[0] == "details"][:1]
    ref = details["slurm_job_id"]
    try:
        wait_for(lambda: squeue(ref) == "PENDING", 30, what="Slurm to queue it")
        execution.terminate()
        wait_for(lambda: squeue(ref) == "", 20, what=f"Slurm job {ref} to be cancelled")
    finally:
        executor.close()
        subprocess.run(["scancel", ref], check=False)


def test_the_recorded_slurm_job_of_a_lost_job_is_cancelled_only_if_ours(
    yard: Yard, tmp_path: Path
) -> None:
    script = tmp_path / "held.sh"
    script.write_text("#!/bin/sh\nexec sleep 120\n")

    def held(comment: str) -> str:
        argv = ["sbatch", "--parsable", "--hold", f"--comment={comment}", "--output=/dev/null"]
        done = subprocess.run([*argv, script], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    ours, theirs = held("jobyard:test:5:1"), held("jobyard:elsewhere:5:1")
    try:
        details = {"executor": "slurm", "identity": "jobyard:test:5:1"}
        assert cancel_recorded({**details, "slurm_job_id": ours})
        assert not cancel_recorded({**details, "slurm_job_id": theirs})
        wait_for(lambda: squeue(ours) == "", 30, what=f"Slurm job {ours} to leave the queue")
        assert squeue(theirs) == "PENDING"
    finally:
        subprocess.run(["scancel", ours, theirs], check=False)


def test_a_timeout_ends_the_slurm_job(server: Server) -> None:
    job = server.submit("s-timeout")
    ref = slurm_id(server, job["id"])
    ended = server.wait_state(job["id"], "failed", "succeeded")
    assert ended["reason"] == "timeout"
    wait_for(lambda: squeue(ref) == "", 30, what=f"Slurm job {ref} to leave the queue")


def test_a_workflow_on_slurm_blocks_on_failure_and_a_restart_unblocks_it(server: Server) -> None:
    run = start_run(server, "chain")
    failed = run_in(server, run["id"], "failed", timeout=120)
    assert {name: node["state"] for name, node in failed["nodes"].items()} == {
        "first": "succeeded",
        "bad": "failed",
        "after": "upstream_failed",
    }
    bad = failed["nodes"]["bad"]["job_id"]
    assert server.job(bad)["details"]["executor"] == "slurm"
    fixed = server.client.post(f"/api/v1/jobs/{bad}/restart", json={"args": {"code": 0}})
    assert fixed.status_code == 201, fixed.text
    done = run_in(server, run["id"], "succeeded", timeout=120)
    after = server.job(done["nodes"]["after"]["job_id"])
    assert ("stdout", "after-node") in lines(server, after["id"])


# -- the server and the controller go away (last: they restart what the others use) -----
def test_a_crashed_worker_adopts_its_slurm_jobs_again(yard: Yard) -> None:
    server = yard.server
    jobs = [server.submit("s-sleep", args={"seconds": 6}) for _ in range(2)]
    refs = [slurm_id(server, job["id"]) for job in jobs]
    for job in jobs:
        wait_for(lambda job=job: ("stdout", "started") in lines(server, job["id"]), 60)
    again = yard.restart(crash=True)
    for job, ref in zip(jobs, refs, strict=True):
        done = again.wait_state(job["id"], "succeeded", "failed", timeout=120)
        assert done["state"] == "succeeded", done
        assert done["attempt"] == 1  # adopted, not run again
        assert done["details"]["slurm_job_id"] == ref
        stdout = [line for stream, line in lines(again, job["id"]) if stream == "stdout"]
        assert stdout == ["started", "woke"]  # every line once
        system = [line for stream, line in lines(again, job["id"]) if stream == "system"]
        assert "attempt 1 adopted by" in " ".join(system)


def test_a_paused_job_adopted_after_a_crash_can_be_resumed(yard: Yard) -> None:
    # The new worker took the held (pending) job for a stopped one: its resume sent a
    # SIGCONT that Slurm refused, every time, and the job could only be killed.
    job = yard.server.submit("s-later")
    ref = slurm_id(yard.server, job["id"])
    wait_for(lambda: squeue(ref) == "PENDING", 30, what="Slurm to queue it")
    yard.server.wait_state(job["id"], "running")
    yard.server.act(job["id"], "pause", expect=202)
    yard.server.wait_state(job["id"], "paused")
    again = yard.restart(crash=True)
    adopted = "attempt 1 adopted by"
    wait_for(lambda: any(adopted in line for _, line in lines(again, job["id"])), 120)
    again.act(job["id"], "resume", expect=202)
    assert again.wait_state(job["id"], "running")["state"] == "running"
    wait_for(lambda: "Held" not in squeue_reason(ref), 30, what="Slurm to release it")
    again.act(job["id"], "kill", expect=202)
    assert again.wait_state(job["id"], "killed")["state"] == "killed"


def test_a_frozen_controller_does_not_stop_the_output_of_running_jobs(server: Server) -> None:
    job = server.submit("s-ticks")
    slurm_id(server, job["id"])
    wait_for(lambda: ("stdout", "tick 1") in lines(server, job["id"]), 60)
    pid = int(Path("/run/slurmctld.pid").read_text())
    os.kill(pid, signal.SIGSTOP)  # every Slurm command now hangs until its timeout
    try:
        seen = len(lines(server, job["id"]))
        wait_for(lambda: len(lines(server, job["id"])) >= seen + 5, 30, what="more output")
        assert server.job(job["id"])["state"] == "running"
    finally:
        os.kill(pid, signal.SIGCONT)
    done = server.wait_state(job["id"], "succeeded", "failed", timeout=120)
    assert done["state"] == "succeeded", done
    stdout = [line for stream, line in lines(server, job["id"]) if stream == "stdout"]
    assert stdout == [f"tick {i}" for i in range(1, 31)]


def test_a_job_lost_with_its_node_fails_with_slurms_reason_and_is_retried(
    server: Server, tmp_path: Path
) -> None:
    job = server.submit("s-lost", args={"marker": str(tmp_path / "marker")})
    slurm_id(server, job["id"])
    wait_for(lambda: ("stdout", "attempt") in lines(server, job["id"]), 60)
    node = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    down = ["scontrol", "update", f"nodename={node}", "state=down", "reason=jobyard-test"]
    subprocess.run(down, check=True)
    try:
        again = server.wait_state(job["id"], "scheduled", "queued", "failed", timeout=60)
        assert again["reason"] == "executor_lost", again
        assert "NODE_FAIL" in again["error"]
    finally:
        # it may be back already: slurmd registers again (ReturnToService=2)
        resume = ["scontrol", "update", f"nodename={node}", "state=resume"]
        subprocess.run(resume, check=False, capture_output=True)
    done = server.wait_state(job["id"], "succeeded", "failed", timeout=120)
    assert (done["state"], done["attempt"]) == ("succeeded", 2)


def test_jobs_survive_a_slurmctld_restart(server: Server) -> None:
    job = server.submit("s-sleep", args={"seconds": 8})
    slurm_id(server, job["id"])
    wait_for(lambda: ("stdout", "started") in lines(server, job["id"]), 60)
    pid = int(Path("/run/slurmctld.pid").read_text())
    os.kill(pid, 15)
    wait_for(lambda: not psutil.pid_exists(pid), 30, what="slurmctld to stop")
    during = server.submit("s-echo", args={"text": "during"})
    assert subprocess.run(["squeue"], capture_output=True, check=False).returncode != 0
    assert server.job(job["id"])["state"] == "running"
    subprocess.run(["bash", str(START)], check=True, capture_output=True, timeout=300)
    done = server.wait_state(job["id"], "succeeded", "failed", timeout=120)
    assert done["state"] == "succeeded", done
    late = server.wait_state(during["id"], "succeeded", "failed", timeout=120)
    assert late["state"] == "succeeded", late
