"""The runner with Python jobs on its pool of pre-started children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from jobyard.models import JobSpec
from jobyard.runner.local import Runner, kill_job_processes
from tests.harness import wait_for
from tests.processes import TIMEOUT, gone, tree_of
from tests.sinks import Recorder, finish, tok

JOBS = """
import os, subprocess, sys, time
from pathlib import Path


def user_settings():
    import settings  # the user's own, beside this file: not one of jobyard's modules

    print(settings.MARK)


def noop():
    pass


def report(ctx, *, n):
    print("first")
    ctx.progress(0.5, "half")
    ctx.metric("rows", n)
    ctx.log("logged %d", n)
    sys.stdout.write("partial")
    print(" line")
    print("to stderr", file=sys.stderr)
    subprocess.run(["echo", "from a subprocess"], check=True)
    return {"written": n, "label": "ignored", "flag": True}


def environment(context):
    print(os.environ["JOBYARD_JOB_ID"], os.environ["JOBYARD_JOB_TOKEN"], os.environ["FOO"])
    print(os.getcwd())


def allocate(mb):
    block = b"x" * (mb * 2**20)
    return {"allocated": len(block)}


def burn(seconds):
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def boom():
    print("about to fail")
    raise ValueError("bad row")


def keyword_context(*, ctx, n):
    ctx.log("n=%d", n)


def reports_objects(ctx):
    ctx.progress("0.25", 123)  # text as the number, a number as the message
    ctx.log(42)
    ctx.log({"rows": 3})
    ctx.log("%s of %d", "a")  # arguments that do not fit: told, as logging tells them
    ctx.log("%(n)s rows", {"n": 5})  # one mapping fills names, as in logging


class Unshowable:
    def __repr__(self):
        raise RuntimeError("no")


def logs_the_unshowable(ctx):
    ctx.log("%d", Unshowable())


async def awaits(ctx, n):
    import asyncio
    await asyncio.sleep(0.01)
    print("awaited", n)
    return {"awaited": n}


def generates():
    yield 1


def forks(ctx, how):
    pid = os.fork()
    if pid == 0:  # as a script's fork: it ends by coming back from the function
        print("in the fork", flush=True)
        if how == "exit":
            sys.exit(0)
        if how == "raise":
            raise RuntimeError("the fork failed")
        return {"fork": 1}
    os.waitpid(pid, 0)
    time.sleep(0.3)
    print("the parent goes on", flush=True)
    return {"parent": 1}


def exits(code):
    sys.exit(code)


def wait_for_file(path):
    print("waiting", flush=True)
    while not os.path.exists(path):
        time.sleep(0.01)


def with_subprocess(path):
    subprocess.Popen(["sleep", "100"])
    subprocess.Popen(["setsid", "sleep", "100"])
    wait_for_file(path)


def unwinds(path):
    try:
        wait_for_file(path + ".never")
    finally:
        Path(path).write_text("unwound")


def sleeps_long(path):
    try:
        print("waiting", flush=True)
        time.sleep(1000)  # in C: Python code runs again only when a signal wakes it
    finally:
        Path(path).write_text("unwound")


def cooperates(ctx):
    steps = 0
    stopping = ctx.stopping  # read before it says it waits: a stop leaves it to return
    print("waiting", flush=True)
    while not stopping:
        time.sleep(0.01)
        steps += 1
        stopping = ctx.stopping
    ctx.log("stop asked")
    return {"steps": steps}


def long_error():
    raise RuntimeError("x" * 200_000)


def odd_numbers():
    return {"rows": 3, "huge": 10**400, "nan": float("nan")}


def closes_stdout():
    print("said", flush=True)
    sys.stdout.close()


def closes_fd(fd):
    print("said", flush=True)
    os.close(fd)


def redirects_stdout(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    os.dup2(fd, 1)
    print("to the file", flush=True)


def odd_metrics(ctx):
    ctx.metric("nan", float("nan"))
    ctx.metric("inf", float("-inf"))
    ctx.metric("huge", 10**400)
    ctx.metric("rows", 3)


class OddDetails:
    def start(self, ctx):
        pass

    def details(self):
        return {"ratio": float("nan")}


def leaves_a_thread(ctx):
    import threading

    def ghost():
        while True:
            ctx.metric("ghost", 1)
            print("ghost", flush=True)
            time.sleep(0.05)

    threading.Thread(target=ghost, daemon=True).start()
    time.sleep(0.1)


def changes_the_process():
    import logging, resource, signal

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    os.umask(0o777)
    resource.setrlimit(resource.RLIMIT_NOFILE, (5, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    sys.path.insert(0, "/nowhere")
    sys.argv.append("--verbose")
    logging.getLogger().addHandler(logging.StreamHandler(sys.stdout))
    logging.getLogger().setLevel(logging.DEBUG)


def process_state():
    import logging, resource, signal

    print("false exits", subprocess.run(["false"]).returncode)
    print("umask", oct(os.umask(0o022)))
    print("SIGTERM", signal.getsignal(signal.SIGTERM))
    print("SIGCHLD", signal.getsignal(signal.SIGCHLD))
    print("blocked", sorted(signal.pthread_sigmask(signal.SIG_BLOCK, ())))
    print("open files", resource.getrlimit(resource.RLIMIT_NOFILE))
    print("path", sys.path[0], "argv", sys.argv)
    root = logging.getLogger()
    print("logging", root.handlers, root.level)


def local_time():
    print(time.strftime("%Z %z"))


class SlowPause:
    def start(self, ctx, *, flag):
        print("started", flush=True)
        while not os.path.exists(flag):
            time.sleep(0.01)

    def pause(self, ctx):
        print("pause hook begins", flush=True)
        while True:  # never returns
            time.sleep(0.01)


class EndsDuringPause:
    def start(self, ctx, *, flag):
        print("started", flush=True)
        while not os.path.exists(flag):
            time.sleep(0.01)

    def pause(self, ctx):
        print("pause hook begins", flush=True)
        time.sleep(1.0)  # the job's code ends meanwhile


def leaves_a_raw_thread():
    import _thread

    def ghost():
        while True:
            print("ghost", flush=True)
            time.sleep(0.05)

    _thread.start_new_thread(ghost, ())


class SpawnsOnStop:
    def start(self, ctx, *, marks):
        self.marks = marks
        print("started", flush=True)
        while not ctx.stopping:
            time.sleep(0.01)

    def stop(self, ctx):
        status = subprocess.run(["cat", "/proc/self/status"], capture_output=True, text=True)
        Path(self.marks).write_text(status.stdout)


class Hooked:
    def _mark(self, what):
        with open(self.marks, "a") as f:
            f.write(what + "\\n")

    def start(self, ctx, *, marks):
        self.marks = marks
        self.phase = "running"
        self._mark("start")
        print("started", flush=True)
        while not ctx.stopping:
            time.sleep(0.01)
        self.phase = "stopped"

    def pause(self, ctx):
        self._mark("pause")

    def resume(self, ctx):
        self._mark("resume")

    def stop(self, ctx):
        self._mark("stop")

    def details(self):
        return {"phase": self.phase}

    def clean(self, ctx, *, marks):
        self.marks = marks
        self._mark("clean")
        print("cleaning up")
"""


@pytest.fixture(scope="module")
def jobs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pyjobs")
    (path / "runner_test_jobs.py").write_text(textwrap.dedent(JOBS))
    return path


@pytest.fixture
def runner(jobs_dir: Path) -> Iterator[Runner]:
    runner = Runner(python_pool=2, python_path=[str(jobs_dir)], preload=["runner_test_jobs"])
    wait_for(lambda: runner.pool.stats()["idle"] == 2, TIMEOUT)
    yield runner
    runner.close()


def job(name: str, **args: object) -> JobSpec:
    return JobSpec(python=f"runner_test_jobs:{name}", args=dict(args))


def test_function_job_reports_in_order(runner: Runner) -> None:
    sink = Recorder()
    result = finish(runner.start(7, tok("t-report"), job("report", n=3), sink))
    assert result.succeeded
    assert (result.exit_code, result.signal, result.error) == (0, None, None)
    assert sink.lines("stdout") == ["first", "logged 3", "partial line", "from a subprocess"]
    assert sink.lines("stderr") == ["to stderr"]
    assert sink.of("progress") == [(0.5, "half")]
    assert sink.of("metric") == [("rows", 3.0), ("written", 3.0)]
    assert sink.nbytes == len("first\nlogged 3\npartial line\nto stderr\nfrom a subprocess\n")


def test_a_progress_message_or_log_line_of_another_type_is_its_text(runner: Runner) -> None:
    """A number as the message was dropped (a traceback in the server's log), a number
    as a log line failed the job; a metric's name was always taken as text."""
    sink = Recorder()
    assert finish(runner.start(1, tok("t-objects"), job("reports_objects"), sink)).succeeded
    assert sink.of("progress") == [(0.25, "123")]
    assert sink.lines("stdout") == ["42", "{'rows': 3}", "%s of %d 'a'", "5 rows"]
    assert sink.lines("stderr") == [
        "ctx.log: the arguments do not fit '%s of %d': not enough arguments for format string"
    ]
    odd = Recorder()  # an argument whose repr fails fails nothing either
    assert finish(runner.start(3, tok("t-odd"), job("logs_the_unshowable"), odd)).succeeded
    assert odd.lines("stdout") == ["%d <Unshowable: repr() failed: RuntimeError('no')>"]
    keyword = Recorder()  # def f(*, ctx, n): given the context by name (it was not given it)
    assert finish(runner.start(2, tok("t-kw"), job("keyword_context", n=2), keyword)).succeeded
    assert keyword.lines("stdout") == ["n=2"]


def test_a_pause_after_the_function_returned_says_it_paused_nothing(runner: Runner) -> None:
    execution = runner.start(9, tok("t-late"), job("noop"), Recorder())
    assert finish(execution).succeeded
    assert execution.pause() is False  # the child is another job's by now: left alone


def test_a_job_imports_its_own_module_of_a_name_jobyard_has_too(
    jobs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's path held jobyard's package directory itself (not the one holding
    it), before the worker's ``PYTHONPATH``: a job's ``import settings`` (or ``models``,
    ``config``, ...) of a module found there got jobyard's own."""
    (tmp_path / "settings.py").write_text('MARK = "the job\'s own settings"\n')
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    runner = Runner(python_pool=1, python_path=[str(jobs_dir)])
    try:
        sink = Recorder()
        assert finish(runner.start(8, tok("tok-8"), job("user_settings"), sink)).succeeded
        assert sink.lines("stdout") == ["the job's own settings"]
    finally:
        runner.close()


def test_environment_and_cwd(runner: Runner, tmp_path: Path) -> None:
    sink = Recorder()
    spec = JobSpec(python="runner_test_jobs:environment", env={"FOO": "bar"}, cwd=str(tmp_path))
    assert finish(runner.start(8, tok("tok-8"), spec, sink)).succeeded
    assert sink.lines("stdout") == [f"8 {tok('tok-8')} bar", str(tmp_path)]
    assert finish(runner.start(9, tok("t-noop"), job("noop"), Recorder())).succeeded  # env undone


def test_exception_fails_the_job_with_its_traceback(runner: Runner) -> None:
    sink = Recorder()
    result = finish(runner.start(1, tok("t-boom"), job("boom"), sink))
    assert not result.succeeded
    assert (result.exit_code, result.signal) == (None, None)
    assert result.error == "ValueError: bad row"
    assert sink.lines("stdout") == ["about to fail"]
    stderr = sink.lines("stderr")
    assert stderr[0] == "Traceback (most recent call last):"
    assert any('raise ValueError("bad row")' in line for line in stderr)
    assert stderr[-1] == "ValueError: bad row"
    assert not any("run_pyjob" in line for line in stderr)


def test_sys_exit_sets_the_exit_code(runner: Runner) -> None:
    result = finish(runner.start(1, tok("t-exit"), job("exits", code=4), Recorder()))
    assert (result.exit_code, result.error, result.succeeded) == (4, "exit code 4", False)
    assert finish(runner.start(1, tok("t-exit0"), job("exits", code=0), Recorder())).succeeded


@pytest.mark.parametrize("how", ["exit", "raise", "return"])
def test_a_fork_that_comes_back_from_the_job_exits_and_the_job_goes_on(
    runner: Runner, how: str
) -> None:
    """The fork told the job's end (succeeded at once, its parent's output lost), or
    its answer was taken for the next job's, which then ran for good."""
    sink = Recorder()
    result = finish(runner.start(1, tok(f"t-fork-{how}"), job("forks", how=how), sink))
    assert result.succeeded, result.error
    assert sink.lines("stdout") == ["in the fork", "the parent goes on"]
    assert sink.of("metric") == [("parent", 1)]
    after = Recorder()
    assert finish(runner.start(2, tok(f"t-after-fork-{how}"), job("noop"), after)).succeeded


def test_an_async_job_runs_its_body_and_a_generator_fails_saying_why(runner: Runner) -> None:
    """Both succeeded without running a line of their bodies ("coroutine was never
    awaited")."""
    sink = Recorder()
    assert finish(runner.start(1, tok("t-async"), job("awaits", n=3), sink)).succeeded
    assert sink.lines("stdout") == ["awaited 3"]
    assert sink.of("metric") == [("awaited", 3)]
    result = finish(runner.start(2, tok("t-generator"), job("generates"), Recorder()))
    assert not result.succeeded
    assert result.error == (
        "TypeError: the job's function is a generator (it has yield): "
        "a job is a plain function or an async one"
    )


def test_bad_target_fails_cleanly(runner: Runner) -> None:
    result = finish(runner.start(1, tok("t-bad"), JobSpec(python="no_such_module:f"), Recorder()))
    assert result.error == "ModuleNotFoundError: No module named 'no_such_module'"


def test_cpu_and_peak_memory_are_the_jobs_own(runner: Runner) -> None:
    big = runner.start(1, tok("t-big"), job("allocate", mb=50), Recorder())
    big_result = finish(big)
    assert big_result.peak_memory is not None
    assert big_result.peak_memory >= 50 * 2**20
    small = runner.start(2, tok("t-small"), job("burn", seconds=0.3), Recorder())
    small_result = finish(small)
    assert small.pid == big.pid  # the same child: its peak was reset for the new job
    assert small_result.peak_memory is not None
    assert small_result.peak_memory < 50 * 2**20
    assert small_result.cpu_seconds is not None
    assert 0.25 <= small_result.cpu_seconds < 30


def test_children_are_reused_after_a_normal_end(runner: Runner) -> None:
    first = runner.start(1, tok("t-r1"), job("noop"), Recorder())
    assert finish(first).succeeded
    wait_for(lambda: first.pid in runner.pool.idle_pids(), TIMEOUT)
    second = runner.start(2, tok("t-r2"), job("boom"), Recorder())
    finish(second)
    assert second.pid == first.pid  # an exception does not spoil the child either
    third = runner.start(3, tok("t-r3"), job("noop"), Recorder())
    assert third.pid == first.pid
    assert finish(third).succeeded


def test_an_error_longer_than_a_log_line_still_ends_the_job(runner: Runner) -> None:
    # The done message was cut at 64 KiB like a log line, and lost: the job ran for ever.
    result = finish(runner.start(1, tok("t-long"), job("long_error"), Recorder()))
    assert not result.succeeded
    assert result.error is not None
    assert result.error.startswith("RuntimeError: xxx")
    assert len(result.error) <= 4096  # the whole traceback is in the log


def test_a_returned_number_no_metric_holds_is_left_out_and_the_job_succeeds(
    runner: Runner,
) -> None:
    sink = Recorder()
    result = finish(runner.start(1, tok("t-odd"), job("odd_numbers"), sink))
    assert result.succeeded  # 10**400 made float() raise outside the job's own code
    assert sink.of("metric") == [("rows", 3.0)]
    said = sink.lines("stderr")
    assert any(line.startswith("metric 'huge' not kept") for line in said), said
    assert any(line.startswith("metric 'nan' not kept") for line in said), said


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("closes_stdout", {}),
        ("closes_fd", {"fd": 1}),
        ("closes_fd", {"fd": 2}),
        ("redirects_stdout", {"path": "-"}),
    ],
)
def test_a_job_that_closes_or_moves_its_output_succeeds_and_the_next_has_a_fresh_child(
    runner: Runner, tmp_path: Path, name: str, args: dict[str, object]
) -> None:
    # The child could not write the end's marker: it exited 70, and the job failed where
    # a command doing the same succeeds.
    if args.get("path") == "-":
        args = {"path": str(tmp_path / "out")}
    sink = Recorder()
    first = runner.start(1, tok(f"t-{name}"), job(name, **args), sink)
    result = finish(first)
    assert result.succeeded, (result, sink.lines("stderr"))
    assert sink.lines("stdout") == ([] if name == "redirects_stdout" else ["said"])
    # Its output is not the child's own any more: the next job runs in a fresh one.
    wait_for(lambda: first.pid not in runner.pool.idle_pids(), TIMEOUT)
    sink = Recorder()
    assert finish(runner.start(2, tok(f"t-{name}-next"), job("report", n=1), sink)).succeeded
    assert sink.lines("stdout")


def test_a_metric_or_details_no_json_holds_are_left_out_and_the_job_goes_on(
    runner: Runner,
) -> None:
    # They reached the store: PostgreSQL refused the write, and the job's output with it;
    # SQLite kept them, and the event stream sent NaN, which no JSON parser reads.
    sink = Recorder()
    result = finish(runner.start(1, tok("t-odd-m"), job("odd_metrics"), sink))
    assert result.succeeded
    assert sink.of("metric") == [("rows", 3.0)]
    said = sink.lines("stderr")
    for name in ("nan", "inf", "huge"):
        assert any(line.startswith(f"metric {name!r} not kept") for line in said), said
    sink = Recorder()
    assert finish(runner.start(2, tok("t-odd-d"), job("OddDetails"), sink)).succeeded
    assert sink.of("details") == []
    assert any("details() returned what JSON cannot hold" in x for x in sink.lines("stderr"))


@pytest.mark.parametrize("name", ["leaves_a_thread", "leaves_a_raw_thread"])
def test_a_child_a_job_left_a_thread_in_is_not_used_again(runner: Runner, name: str) -> None:
    # The thread went on writing into the next jobs' logs and metrics (one started with
    # _thread, which threading does not list, was not even noticed).
    first = runner.start(1, tok("t-thread"), job(name), Recorder())
    assert finish(first).succeeded
    wait_for(
        lambda: runner.pool.stats()["idle"] == 2 and first.pid not in runner.pool.idle_pids(),
        TIMEOUT,
    )
    sink = Recorder()
    assert finish(runner.start(2, tok("t-after"), job("noop"), sink)).succeeded
    assert "ghost" not in sink.lines("stdout")
    assert sink.of("metric") == []


def test_killed_job_child_is_replaced_by_a_warm_one(runner: Runner, tmp_path: Path) -> None:
    sink = Recorder()
    execution = runner.start(
        1, tok("t-kill"), job("with_subprocess", path=str(tmp_path / "f")), sink
    )
    wait_for(lambda: "waiting" in sink.lines("stdout"), TIMEOUT)
    procs = tree_of(execution.pid, 3)
    execution.kill()
    result = finish(execution)
    assert (result.signal, result.exit_code, result.succeeded) == (9, None, False)
    assert all(gone(p) for p in procs)
    wait_for(lambda: runner.pool.stats() == {"idle": 2, "busy": 0, "starting": 0}, TIMEOUT)
    warm = runner.pool.idle_pids()
    assert execution.pid not in warm
    after = runner.start(2, tok("t-after"), job("noop"), Recorder())
    assert after.pid in warm
    assert finish(after).succeeded


def test_leftover_processes_of_a_finished_job_are_killed(runner: Runner, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    sink = Recorder()
    execution = runner.start(1, tok("t-left"), job("with_subprocess", path=str(flag)), sink)
    procs = tree_of(execution.pid, 3)
    flag.touch()
    assert finish(execution).succeeded
    assert all(gone(p) for p in procs[1:])
    assert execution.pid in runner.pool.idle_pids()  # the child itself serves on


def test_pause_and_resume_a_function_job(runner: Runner, tmp_path: Path) -> None:
    sink = Recorder()
    execution = runner.start(
        1, tok("t-pause"), job("with_subprocess", path=str(tmp_path / "f")), sink
    )
    procs = tree_of(execution.pid, 3)
    in_group = [p for p in procs if os.getpgid(p.pid) == execution.pid]
    assert len(in_group) == 2  # the child and its plain subprocess; setsid left the group
    execution.pause()
    wait_for(lambda: all(p.status() == psutil.STATUS_STOPPED for p in in_group), TIMEOUT)
    execution.resume()
    wait_for(lambda: all(p.status() != psutil.STATUS_STOPPED for p in in_group), TIMEOUT)
    execution.kill()
    finish(execution)
    assert all(gone(p) for p in procs)


def test_terminate_unwinds_a_function_job(runner: Runner, tmp_path: Path) -> None:
    marker = tmp_path / "unwound"
    sink = Recorder()
    execution = runner.start(1, tok("t-term"), job("unwinds", path=str(marker)), sink)
    wait_for(lambda: "waiting" in sink.lines("stdout"), TIMEOUT)
    execution.terminate()
    result = finish(execution)
    assert marker.read_text() == "unwound"
    assert (result.signal, result.exit_code, result.succeeded) == (15, None, False)
    wait_for(lambda: runner.pool.stats()["idle"] == 2, TIMEOUT)
    assert execution.pid not in runner.pool.idle_pids()  # a stopped job's child is not reused


def test_a_paused_function_job_unwinds_when_stopped(runner: Runner, tmp_path: Path) -> None:
    """Stopped, every thread of the child is; SIGCONT then SIGTERM woke them, and one in
    four times a thread other than the main one took the signal: the handler waited for
    the sleeping main thread, and the kill came at the end of the grace, no ``finally``
    run. Eight rounds, so that the old way fails nearly always."""
    for round_ in range(8):
        marker = tmp_path / f"unwound-{round_}"
        sink = Recorder()
        spec = job("sleeps_long", path=str(marker))
        execution = runner.start(1, tok(f"t-pt{round_}"), spec, sink)
        wait_for(lambda sink=sink: "waiting" in sink.lines("stdout"), TIMEOUT)
        child = psutil.Process(execution.pid)
        execution.pause()
        wait_for(lambda child=child: child.status() == psutil.STATUS_STOPPED, TIMEOUT)
        execution.terminate()
        result = finish(execution, timeout=20)  # the old way: not before the grace's kill
        assert marker.read_text() == "unwound", f"round {round_}"
        assert (result.signal, result.exit_code) == (15, None), f"round {round_}"


def test_a_function_that_reads_stopping_returns_on_its_own_when_stopped(runner: Runner) -> None:
    """The documented cooperative stop: SystemExit was raised where it ran, so its check
    of ``ctx.stopping`` never ran, nor what it returned."""
    sink = Recorder()
    execution = runner.start(1, tok("t-coop"), job("cooperates"), sink)
    wait_for(lambda: "waiting" in sink.lines("stdout"), TIMEOUT)
    execution.terminate()
    result = finish(execution)
    assert result.succeeded  # it returned (the worker ends it killed: it asked the stop)
    assert sink.lines("stdout") == ["waiting", "stop asked"]
    assert [name for name, _ in sink.of("metric")] == ["steps"]


def test_class_job_hooks(runner: Runner, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    sink = Recorder()
    execution = runner.start(1, tok("t-hooks"), job("Hooked", marks=str(marks)), sink)
    wait_for(lambda: "started" in sink.lines("stdout"), TIMEOUT)
    execution.pause()  # the hook ran before the process was stopped
    assert marks.read_text().split() == ["start", "pause"]
    wait_for(lambda: psutil.Process(execution.pid).status() == psutil.STATUS_STOPPED, TIMEOUT)
    execution.resume()
    wait_for(lambda: marks.read_text().split()[-1:] == ["resume"], TIMEOUT)
    execution.terminate()
    result = finish(execution)
    assert result.succeeded  # start() returned after stop(): a clean cooperative stop
    assert marks.read_text().split() == ["start", "pause", "resume", "stop", "clean"]
    assert sink.of("details")[-1] == ({"phase": "stopped"},)
    assert "cleaning up" in sink.lines("stdout")
    assert "running clean()" in sink.lines("system")


def test_a_process_a_stop_hook_starts_hears_sigterm(runner: Runner, tmp_path: Path) -> None:
    """The hook runs in a thread of the child's, which leaves SIGTERM to the main thread;
    a process started there inherited that, and outlived a stop until SIGKILL."""
    marks = tmp_path / "status"
    sink = Recorder()
    execution = runner.start(1, tok("t-spawn"), job("SpawnsOnStop", marks=str(marks)), sink)
    wait_for(lambda: "started" in sink.lines("stdout"), TIMEOUT)
    execution.terminate()
    assert finish(execution).succeeded
    [blocked] = [line for line in marks.read_text().splitlines() if line.startswith("SigBlk:")]
    assert not int(blocked.split()[1], 16) & (1 << (signal.SIGTERM - 1)), blocked


def test_killed_class_job_is_cleaned(runner: Runner, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    sink = Recorder()
    execution = runner.start(1, tok("t-kclean"), job("Hooked", marks=str(marks)), sink)
    wait_for(lambda: "started" in sink.lines("stdout"), TIMEOUT)
    execution.kill()
    result = finish(execution)
    assert result.signal == 9
    assert marks.read_text().split() == ["start", "clean"]
    # clean() runs on a fresh object, which is not asked for details (its details() would
    # raise here: it never ran start), so it reports none and the run's stay.
    assert all(details == ({"phase": "running"},) for details in sink.of("details"))
    assert not [line for line in sink.lines("stderr") if "Traceback" in line]


def test_details_are_polled_while_running(runner: Runner, tmp_path: Path) -> None:
    sink = Recorder()
    execution = runner.start(1, tok("t-details"), job("Hooked", marks=str(tmp_path / "m")), sink)
    details = wait_for(lambda: execution.wait(0.1) is None and sink.of("details"), TIMEOUT)
    assert details == [({"phase": "running"},)]
    execution.kill()
    finish(execution)


def test_kill_job_processes_reaches_python_subprocesses(runner: Runner, tmp_path: Path) -> None:
    sink = Recorder()
    execution = runner.start(
        1, tok("t-orphans"), job("with_subprocess", path=str(tmp_path / "f")), sink
    )
    procs = tree_of(execution.pid, 3)
    assert kill_job_processes(tok("t-orphans")) == 2  # the child itself has no token in its environ
    wait_for(lambda: all(gone(p) for p in procs[1:]), TIMEOUT)
    execution.kill()
    finish(execution)


PARENT = """
import os, sys, time
from jobyard.models import JobSpec
from jobyard.runner.local import Runner
runner = Runner(python_pool=1, python_path=[sys.argv[1]])
spec = JobSpec(python="runner_test_jobs:with_subprocess", args={"path": sys.argv[2]})


class Quiet:
    def __getattr__(self, name):
        return lambda *args: None


execution = runner.start(1, "t-parent-" + sys.argv[2], spec, Quiet())
print(execution.pid, flush=True)
sys.stdin.readline()
if sys.argv[3] == "pause":
    execution.pause()
os._exit(0)
"""


@pytest.mark.parametrize("state", ["running", "pause"])
def test_children_die_with_the_parent(jobs_dir: Path, tmp_path: Path, state: str) -> None:
    argv = [sys.executable, "-c", PARENT, str(jobs_dir), str(tmp_path / "f"), state]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        assert parent.stdin is not None
        pid = int(parent.stdout.readline())
        procs = tree_of(pid, 3)
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert parent.wait(TIMEOUT) == 0
    wait_for(lambda: all(gone(p) for p in procs), TIMEOUT)


def test_what_a_job_changes_in_its_process_is_put_back_for_the_next_job(runner: Runner) -> None:
    """Only the environment and the working directory were: SIGCHLD ignored made a later
    job's failing subprocess exit 0, SIGTERM ignored made its stops wait for the kill, a
    limit of 5 open files failed every later job."""
    before, after = Recorder(), Recorder()
    first = runner.start(1, tok("t-state-1"), job("process_state"), before)
    assert finish(first).succeeded
    changes = runner.start(2, tok("t-state-2"), job("changes_the_process"), Recorder())
    assert changes.pid == first.pid  # the warm child serves on
    assert finish(changes).succeeded
    second = runner.start(3, tok("t-state-3"), job("process_state"), after)
    assert second.pid == first.pid
    assert finish(second).succeeded
    assert "false exits 1" in after.lines("stdout")
    assert after.lines("stdout") == before.lines("stdout")


def test_a_types_tz_is_the_jobs_local_time(runner: Runner) -> None:
    sinks = {tz: Recorder() for tz in ("Asia/Tokyo", "UTC", "America/New_York")}
    for i, (tz, sink) in enumerate(sinks.items()):
        spec = JobSpec(python="runner_test_jobs:local_time", env={"TZ": tz})
        assert finish(runner.start(i, tok(f"t-tz-{i}"), spec, sink)).succeeded
    lines = {tz: sink.lines("stdout") for tz, sink in sinks.items()}
    assert lines["Asia/Tokyo"] == ["JST +0900"]
    assert lines["UTC"] == ["UTC +0000"]
    assert lines["America/New_York"][0] in ("EST -0500", "EDT -0400")
    own = Recorder()
    assert finish(runner.start(9, tok("t-tz-own"), job("local_time"), own)).succeeded
    expected = subprocess.run(
        [sys.executable, "-c", "import time; print(time.strftime('%Z %z'))"],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "TZ"},
    ).stdout.split("\n")[:1]
    assert own.lines("stdout") == expected  # the child's own local time again


def test_a_hook_still_running_when_its_job_ended_retires_the_child(
    runner: Runner, tmp_path: Path
) -> None:
    """The hooks ran in the child's control thread: the next job waited behind a slow
    one, and got its output in its log; one that never returned wedged the child."""
    flag = tmp_path / "go"
    sink = Recorder()
    execution = runner.start(1, tok("t-slowpause"), job("SlowPause", flag=str(flag)), sink)
    wait_for(lambda: "started" in sink.lines("stdout"), TIMEOUT)
    assert execution.pause()  # goes on after a while: the hook holds no one up
    assert execution.resume()
    wait_for(lambda: "pause hook begins" in sink.lines("stdout"), TIMEOUT)
    flag.touch()
    assert finish(execution).succeeded
    wait_for(
        lambda: runner.pool.stats()["idle"] == 2 and execution.pid not in runner.pool.idle_pids(),
        TIMEOUT,
    )
    assert any("hook had not returned" in line for line in sink.lines("stderr"))
    after = Recorder()
    assert finish(runner.start(2, tok("t-after-hook"), job("noop"), after)).succeeded
    assert after.lines("stdout") == []


def test_a_job_that_ends_while_its_pause_hook_runs_is_not_stopped(
    runner: Runner, tmp_path: Path
) -> None:
    """The child was SIGSTOPped once the hook returned, though the job's code had ended
    meanwhile: the ended job stayed paused, holding its slot and its result, until
    someone resumed it."""
    flag = tmp_path / "go"
    sink = Recorder()
    execution = runner.start(1, tok("t-endpause"), job("EndsDuringPause", flag=str(flag)), sink)
    wait_for(lambda: "started" in sink.lines("stdout"), TIMEOUT)
    paused: list[bool] = []
    pausing = threading.Thread(target=lambda: paused.append(execution.pause()))
    pausing.start()
    wait_for(lambda: "pause hook begins" in sink.lines("stdout"), TIMEOUT)
    flag.touch()
    pausing.join(TIMEOUT)
    assert paused == [False]  # nothing was paused: the job's end comes next
    assert execution.wait(TIMEOUT) is not None
    assert finish(execution).succeeded


def test_a_class_jobs_child_serves_on_after_its_hooks_returned(
    runner: Runner, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    sink = Recorder()
    execution = runner.start(1, tok("t-hooks-reuse"), job("Hooked", marks=str(marks)), sink)
    wait_for(lambda: execution.wait(0.1) is None and sink.of("details"), TIMEOUT)
    assert execution.pause()
    assert execution.resume()
    wait_for(lambda: marks.read_text().split()[-1:] == ["resume"], TIMEOUT)
    os.kill(execution.pid, signal.SIGTERM)  # as a stop, without asking one: ends normally
    assert finish(execution).succeeded
    assert sink.of("details")[-1] == ({"phase": "stopped"},)
    wait_for(lambda: execution.pid in runner.pool.idle_pids(), TIMEOUT)
