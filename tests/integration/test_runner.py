"""The runner with real command processes: output, exit, signals, leftovers, resources."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from jobyard.models import JobSpec
from jobyard.runner.local import Runner, kill_job_processes
from tests.harness import wait_for
from tests.processes import TIMEOUT, gone, tree, tree_of
from tests.sinks import Recorder, finish, tok


@pytest.fixture
def runner() -> Iterator[Runner]:
    runner = Runner(python_pool=0)
    yield runner
    runner.close()


def sh(script: str, **kwargs: Any) -> JobSpec:
    return JobSpec(argv=["/bin/sh", "-c", script], shell=True, **kwargs)


def test_lines_keep_their_order_and_stream(runner: Runner) -> None:
    script = "i=0; while [ $i -lt 300 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done"
    sink = Recorder()
    result = finish(runner.start(1, tok("t-order"), sh(script), sink))
    assert result.succeeded
    assert result.exit_code == 0
    assert sink.lines("stdout") == [f"out{i}" for i in range(300)]
    assert sink.lines("stderr") == [f"err{i}" for i in range(300)]


def test_counts_every_byte_and_keeps_an_unfinished_last_line(runner: Runner) -> None:
    sink = Recorder()
    script = "printf 'abc\\n##jobyard metric rows 5\\n'; printf 'no newline' >&2"
    finish(runner.start(1, tok("t-bytes"), sh(script), sink))
    assert sink.nbytes == 4 + 24 + 10
    assert sink.lines("stderr") == ["no newline"]
    assert sink.of("metric") == [("rows", 5.0)]


def test_exit_code_and_error(runner: Runner) -> None:
    result = finish(runner.start(1, tok("t-exit"), sh("exit 3"), Recorder()))
    assert (result.exit_code, result.signal, result.succeeded) == (3, None, False)
    assert result.error == "exit code 3"


def test_command_not_found(runner: Runner) -> None:
    sink = Recorder()
    execution = runner.start(1, tok("t-nf"), JobSpec(argv=["no-such-command-here"]), sink)
    result = finish(execution)
    assert (result.exit_code, result.succeeded) == (127, False)
    assert result.error is not None
    assert "command not found: no-such-command-here" in result.error
    assert sink.lines("system") == [result.error]


def test_not_executable_and_bad_cwd(runner: Runner, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("echo hi\n")
    result = finish(runner.start(1, tok("t-perm"), JobSpec(argv=[str(script)]), Recorder()))
    assert result.exit_code == 126
    assert "permission denied" in (result.error or "")
    missing = str(tmp_path / "missing")
    result = finish(
        runner.start(1, tok("t-cwd"), JobSpec(argv=["/bin/true"], cwd=missing), Recorder())
    )
    assert result.exit_code == 126
    assert missing in (result.error or "")


def test_line_protocol(runner: Runner) -> None:
    script = (
        "echo '##jobyard progress 0.42 copying files'; echo '##jobyard progress 7';"
        "echo '##jobyard metric rows 1200'; echo '##jobyard metric rows many'; echo plain;"
        "echo '##jobyard progress 0.5' >&2"
    )
    sink = Recorder()
    finish(runner.start(1, tok("t-proto"), sh(script), sink))
    assert sink.of("progress") == [(0.42, "copying files"), (1.0, None)]
    assert sink.of("metric") == [("rows", 1200.0)]
    assert sink.lines("stdout") == ["##jobyard metric rows many", "plain"]
    assert sink.lines("stderr") == ["##jobyard progress 0.5"]


def test_environment_and_cwd(runner: Runner, tmp_path: Path) -> None:
    spec = sh('echo "$JOBYARD_JOB_ID $JOBYARD_JOB_TOKEN $FOO"; pwd', env={"FOO": "bar"})
    spec = JobSpec(argv=spec.argv, env=spec.env, cwd=str(tmp_path))
    sink = Recorder()
    finish(runner.start(42, tok("tok-42"), spec, sink))
    assert sink.lines("stdout") == [f"42 {tok('tok-42')} bar", str(tmp_path)]


def test_pause_stops_every_process_of_the_group_and_resume_continues(runner: Runner) -> None:
    execution = runner.start(1, tok("t-pause"), sh("sleep 100 & sleep 100; wait"), Recorder())
    procs = tree_of(execution.pid, 3)
    assert all(os.getpgid(p.pid) == execution.pid for p in procs)
    execution.pause()
    wait_for(lambda: all(p.status() == psutil.STATUS_STOPPED for p in procs), TIMEOUT)
    execution.resume()
    wait_for(lambda: all(p.status() != psutil.STATUS_STOPPED for p in procs), TIMEOUT)
    execution.kill()
    result = finish(execution)
    assert (result.signal, result.exit_code, result.error) == (9, None, "killed by signal 9")
    assert all(gone(p) for p in procs)


def test_pause_stops_what_left_the_group_too_and_resume_continues_it(runner: Runner) -> None:
    """``setsid`` takes a process out of the job's group (and session): a pause that stopped
    the group only left it running, using CPU while the job showed ``paused``."""
    script = "setsid sh -c 'setsid sleep 100 & sleep 100' & sleep 100; wait"
    execution = runner.start(1, tok("t-pause-setsid"), sh(script), Recorder())
    procs = wait_for(lambda: _escaped(execution.pid, 5, 3), TIMEOUT)
    execution.pause()
    wait_for(lambda: all(p.status() == psutil.STATUS_STOPPED for p in procs), TIMEOUT)
    execution.resume()
    wait_for(lambda: all(p.status() != psutil.STATUS_STOPPED for p in procs), TIMEOUT)
    execution.pause()
    execution.terminate()  # what a stop sends first: everything runs again to hear it
    wait_for(lambda: all(gone(p) or p.status() != psutil.STATUS_STOPPED for p in procs), TIMEOUT)
    execution.kill()
    finish(execution)
    assert all(gone(p) for p in procs)


def test_a_pause_that_comes_after_the_job_exited_says_it_paused_nothing(runner: Runner) -> None:
    execution = runner.start(1, tok("t-late"), sh("exit 0"), Recorder())
    finish(execution)
    assert execution.pause() is False  # the run stores no pause the job never had
    running = runner.start(1, tok("t-live"), sh("sleep 100"), Recorder())
    assert running.pause() is True
    running.kill()
    finish(running)


def test_terminate_ignored_then_kill_leaves_nothing(runner: Runner) -> None:
    script = (
        "trap 'echo got-term' TERM; (trap '' TERM; sleep 100) & "
        "echo ready; while true; do wait; done"
    )
    sink = Recorder()
    execution = runner.start(1, tok("t-term"), sh(script), sink)
    procs = tree_of(execution.pid, 2, children=None)
    wait_for(lambda: "ready" in sink.lines("stdout"), TIMEOUT)
    execution.pause()  # terminate must also reach a paused job (SIGCONT first)
    execution.terminate()
    wait_for(lambda: "got-term" in sink.lines("stdout"), TIMEOUT)
    assert execution.wait(0) is None
    assert not any(gone(p) for p in procs)
    execution.kill()
    result = finish(execution)
    assert result.signal == 9
    assert all(gone(p) for p in procs)


def test_kill_reaches_a_grandchild_that_left_the_session(runner: Runner) -> None:
    sink = Recorder()
    execution = runner.start(1, tok("t-setsid"), sh("setsid sleep 100 & sleep 100; wait"), sink)
    procs = wait_for(lambda: _escaped(execution.pid), TIMEOUT)
    execution.kill()
    finish(execution)
    assert all(gone(p) for p in procs)


def _escaped(pid: int, processes: int = 3, sessions: int = 2) -> list[psutil.Process] | None:
    """The tree of ``pid`` once it has ``processes`` in ``sessions`` (``setsid`` made all but
    the job's own)."""
    procs = tree(pid)
    seen = {os.getsid(p.pid) for p in procs if not gone(p)}
    return procs if len(procs) >= processes and len(seen) == sessions else None


def test_background_process_of_a_finished_job_is_killed(runner: Runner) -> None:
    sink = Recorder()
    started = time.monotonic()
    result = finish(runner.start(1, tok("t-bg"), sh("sleep 100 & echo $!"), sink))
    assert result.succeeded
    assert time.monotonic() - started < 20  # the sleep held stdout, yet the drain ended
    background = int(sink.lines("stdout")[0])
    assert not psutil.pid_exists(background) or gone(psutil.Process(background))


def test_escaped_background_process_is_killed_by_token(runner: Runner, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = (
        f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 100' & "
        f"while [ ! -s {pidfile} ]; do sleep 0.01; done"
    )
    result = finish(runner.start(1, tok("t-esc"), sh(script), Recorder()))
    assert result.succeeded
    background = int(pidfile.read_text())
    assert not psutil.pid_exists(background) or gone(psutil.Process(background))


def test_drain_is_bounded_when_output_stays_open(runner: Runner, tmp_path: Path) -> None:
    # escapes the group, is never seen and drops the token: only the drain bound saves us
    pidfile = tmp_path / "pid"
    script = (
        f"env -u JOBYARD_JOB_TOKEN setsid sh -c 'echo $$ > {pidfile}; exec sleep 100' & "
        f"while [ ! -s {pidfile} ]; do sleep 0.01; done"
    )
    sink = Recorder()
    result = finish(runner.start(1, tok("t-drain"), sh(script), sink))
    background = int(pidfile.read_text())
    try:
        assert result.succeeded
        assert any("holds it open" in line for line in sink.lines("system"))
    finally:
        os.kill(background, signal.SIGKILL)


def test_cpu_time_is_measured(runner: Runner) -> None:
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
    result = finish(
        runner.start(1, tok("t-cpu"), JobSpec(argv=[sys.executable, "-c", burn]), Recorder())
    )
    assert result.cpu_seconds is not None
    assert 0.45 <= result.cpu_seconds < 30


def test_peak_memory_is_measured(runner: Runner, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    code = (
        "import os, time\nblock = b'x' * (50 * 2**20)\nprint('allocated', flush=True)\n"
        f"while not os.path.exists({str(flag)!r}): time.sleep(0.01)\n"
    )
    sink = Recorder()
    execution = runner.start(1, tok("t-mem"), JobSpec(argv=[sys.executable, "-c", code]), sink)
    wait_for(lambda: "allocated" in sink.lines("stdout"), TIMEOUT)
    sample = execution.sample()
    assert sample.rss >= 50 * 2**20
    flag.touch()
    result = finish(execution)
    assert result.succeeded
    assert result.peak_memory is not None
    assert 50 * 2**20 <= result.peak_memory < 1024 * 2**20


def test_a_finished_job_spares_another_workers_processes_of_its_token(
    runner: Runner, tmp_path: Path
) -> None:
    """Two installations on one host, each with a worker of one name, both running their
    job 34: the token is the same. When ours ended, its sweep of what it left behind
    killed the other's job (SIGKILL) too, by the token alone."""
    token = tok("t-namesake")
    go = tmp_path / "go"
    execution = runner.start(1, token, sh(f"while [ ! -e {go} ]; do sleep 0.01; done"), Recorder())
    # Started after ours, as a young job's sweep looks at the pids allocated after its own.
    other_worker = psutil.Popen(["sleep", "100"])  # a live worker of another database
    environment = os.environ | {
        "JOBYARD_JOB_TOKEN": token,
        "JOBYARD_WORKER_PID": str(other_worker.pid),
    }
    theirs = psutil.Popen(["sleep", "100"], env=environment, start_new_session=True)
    try:
        go.touch()
        assert finish(execution).succeeded
        assert theirs.poll() is None
    finally:
        for process in (theirs, other_worker):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
            process.wait(TIMEOUT)


def test_kill_job_processes_by_token(runner: Runner) -> None:
    execution = runner.start(1, tok("t-orphan-1"), sh("sleep 100 & sleep 100; wait"), Recorder())
    procs = tree_of(execution.pid, 3)
    assert kill_job_processes(tok("t-orphan-1")) == 3
    assert finish(execution).signal == 9
    wait_for(lambda: all(gone(p) for p in procs), TIMEOUT)
    assert kill_job_processes(tok("t-orphan-1")) == 0


def test_kill_job_processes_of_one_worker_spares_another_workers_of_the_same_token(
    runner: Runner,
) -> None:
    # Another database's worker on this host may run a job of the same token (a
    # namesake, the same job id): its processes carry another worker's pid.
    execution = runner.start(1, tok("t-orphan-2"), sh("sleep 100 & sleep 100; wait"), Recorder())
    procs = tree_of(execution.pid, 3)
    assert kill_job_processes(tok("t-orphan-2"), owner=1) == 0  # pid 1 started no job
    assert not any(gone(p) for p in procs)
    assert kill_job_processes(tok("t-orphan-2"), owner=os.getpid()) == 3
    assert finish(execution).signal == 9
    wait_for(lambda: all(gone(p) for p in procs), TIMEOUT)
