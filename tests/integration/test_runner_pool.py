"""The pool of pre-started Python children: exactly what the slots need, warm, preloaded."""

from __future__ import annotations

import logging
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from jobyard.config import load_config
from jobyard.models import JobSpec
from jobyard.runner import python
from jobyard.runner.local import Execution, Result, Runner
from tests.harness import wait_for
from tests.processes import TIMEOUT, gone
from tests.sinks import Recorder, finish, tok

JOBS = """
import os, sys, time


def noop():
    pass


def wait_for_file(path):
    print("waiting", flush=True)
    while not os.path.exists(path):
        time.sleep(0.01)


def argv():
    import pool_argv

    print(pool_argv.ARGV, sys.argv, flush=True)


def modules(names):
    print(" ".join(name for name in names if name in sys.modules), flush=True)


class Hooked:
    def start(self, ctx, *, marks):
        print("started", flush=True)
        while True:
            time.sleep(0.01)

    def clean(self, ctx, *, marks):
        with open(marks, "a") as f:
            f.write(f"clean {os.getpid()}\\n")
"""


MakeRunner = Callable[..., Runner]


@pytest.fixture(scope="module")
def jobs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pooljobs")
    (path / "pool_jobs.py").write_text(textwrap.dedent(JOBS))
    (path / "pool_other_jobs.py").write_text("def other():\n    pass\n")
    (path / "pool_heavy.py").write_text("LOADED = True\n")
    (path / "pool_broken.py").write_text("raise RuntimeError('cannot load')\n")
    (path / "pool_slow.py").write_text("import time\ntime.sleep(1.5)  # a heavy library\n")
    (path / "pool_dies.py").write_text("import os\nos._exit(3)\n")
    (path / "pool_exits.py").write_text("raise SystemExit('no settings')\n")
    (path / "pool_argv.py").write_text("import sys\nARGV = list(sys.argv)\n")
    return path


@pytest.fixture
def make_runner(jobs_dir: Path) -> Iterator[MakeRunner]:
    """Runners closed at the end, each with its pool ready."""
    runners: list[Runner] = []

    def make(size: int, preload: tuple[str, ...] = ("pool_jobs",)) -> Runner:
        runner = Runner(python_pool=size, python_path=[str(jobs_dir)], preload=preload)
        runners.append(runner)
        assert runner.pool.wait_ready(TIMEOUT)
        return runner

    yield make
    for runner in runners:
        runner.close()


def job(name: str, **args: object) -> JobSpec:
    return JobSpec(python=f"pool_jobs:{name}", args=dict(args))


def pool_children() -> list[int]:
    """Our live pre-started children, as the OS sees them."""
    found = []
    for proc in psutil.Process().children():
        try:
            if "jobyard.child" in proc.cmdline() and not gone(proc):
                found.append(proc.pid)
        except psutil.NoSuchProcess:
            continue
    return sorted(found)


def waiting(runner: Runner, path: Path, token: str) -> tuple[Execution, Recorder]:
    sink = Recorder()
    execution = runner.start(1, tok(token), job("wait_for_file", path=str(path)), sink)
    wait_for(lambda: "waiting" in sink.lines("stdout"), TIMEOUT)
    return execution, sink


def test_every_child_is_started_before_the_first_job(make_runner: MakeRunner) -> None:
    runner = make_runner(3)
    assert runner.pool.stats() == {"idle": 3, "busy": 0, "starting": 0}
    assert sorted(runner.pool.idle_pids()) == pool_children()
    assert runner.pool.spawned == 3


def test_busy_slots_get_no_spare_child(make_runner: MakeRunner, tmp_path: Path) -> None:
    runner = make_runner(2)
    before = pool_children()
    flag = tmp_path / "go"
    first, _ = waiting(runner, flag, "t-busy-1")
    second, _ = waiting(runner, flag, "t-busy-2")
    assert runner.pool.stats() == {"idle": 0, "busy": 2, "starting": 0}
    assert pool_children() == before == sorted([first.pid, second.pid])
    flag.touch()
    assert finish(first).succeeded
    assert finish(second).succeeded
    wait_for(lambda: runner.pool.stats()["idle"] == 2, TIMEOUT)
    assert pool_children() == before  # nobody was killed at release either
    assert runner.pool.spawned == 2


def test_the_same_warm_child_serves_job_after_job(make_runner: MakeRunner) -> None:
    runner = make_runner(2)
    first = runner.start(1, tok("t-warm-0"), job("noop"), Recorder())
    assert finish(first).succeeded
    for i in range(1, 10):
        execution = runner.start(1, tok(f"t-warm-{i}"), job("noop"), Recorder())
        assert finish(execution).succeeded
        assert execution.pid == first.pid  # the most recently used child serves first
    assert runner.pool.spawned == 2


def test_a_killed_jobs_child_is_replaced(make_runner: MakeRunner, tmp_path: Path) -> None:
    runner = make_runner(2)
    before = pool_children()
    execution, _ = waiting(runner, tmp_path / "never", "t-replace")
    execution.kill()
    assert finish(execution).signal == 9
    wait_for(lambda: runner.pool.stats() == {"idle": 2, "busy": 0, "starting": 0}, TIMEOUT)
    wait_for(lambda: len(pool_children()) == 2, TIMEOUT)
    after = pool_children()
    assert execution.pid in before
    assert execution.pid not in after
    assert len(set(after) & set(before)) == 1
    assert runner.pool.spawned == 3


def test_clean_waits_for_the_killed_childs_replacement(
    make_runner: MakeRunner, tmp_path: Path
) -> None:
    runner = make_runner(1)  # every child busy: clean() needs the replacement
    marks = tmp_path / "marks"
    sink = Recorder()
    execution = runner.start(1, tok("t-clean"), job("Hooked", marks=str(marks)), sink)
    wait_for(lambda: "started" in sink.lines("stdout"), TIMEOUT)
    execution.kill()
    assert finish(execution).signal == 9
    (cleaned_by,) = [int(line.split()[1]) for line in marks.read_text().splitlines()]
    assert cleaned_by != execution.pid
    assert runner.pool.idle_pids() == [cleaned_by] == pool_children()


def test_jobs_beyond_the_size_get_a_child_of_their_own(
    make_runner: MakeRunner, tmp_path: Path
) -> None:
    runner = make_runner(1)
    flag = tmp_path / "go"
    first, _ = waiting(runner, flag, "t-beyond-1")
    second, _ = waiting(runner, flag, "t-beyond-2")
    assert first.pid != second.pid
    flag.touch()
    assert finish(first).succeeded
    assert finish(second).succeeded
    wait_for(lambda: len(pool_children()) == 1, TIMEOUT)
    assert runner.pool.stats() == {"idle": 1, "busy": 0, "starting": 0}


def test_preloaded_modules_are_imported_before_the_first_job(
    make_runner: MakeRunner, jobs_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = jobs_dir / "jobyard.yaml"
    config.write_text(
        textwrap.dedent(
            """
            job_types:
              modules: {python: "pool_jobs:modules"}
              other: {python: "pool_other_jobs:other"}
            preload: [pool_heavy, pool_broken]
            """
        )
    )
    modules = load_config(config).preload_modules()
    assert modules == ["pool_jobs", "pool_other_jobs", "pool_heavy", "pool_broken"]
    with caplog.at_level(logging.WARNING, logger="jobyard.runner.pool"):
        runner = make_runner(1, preload=tuple(modules))
    assert any("preload failed" in r.getMessage() for r in caplog.records)
    names = ["pool_other_jobs", "pool_heavy", "pool_broken", "json"]
    sink = Recorder()
    execution = runner.start(1, tok("t-preload"), job("modules", names=names), sink)
    assert finish(execution).succeeded  # a failed preload does not stop the child
    assert sink.lines("stdout") == ["pool_other_jobs pool_heavy json"]
    assert "pool_heavy" not in sys.modules  # imported by the child, not by us


def test_a_job_waits_for_a_child_still_importing_its_preload(
    jobs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child's import time counted against the job's wait for a child: with a slow
    preload every job at the worker's start (and after each replaced child) failed,
    spawn failed, "no Python child process became ready"."""
    monkeypatch.setattr(python, "ACQUIRE_TIMEOUT", 0.2)  # shorter than the preload's import
    runner = Runner(python_pool=1, python_path=[str(jobs_dir)], preload=("pool_slow",))
    try:
        result = finish(runner.start(1, tok("t-slow"), job("noop"), Recorder()))
        assert (result.succeeded, result.spawn_failed, result.error) == (True, False, None)
    finally:
        runner.close()


def test_a_job_stopped_while_it_waits_for_a_child_gives_the_wait_up_at_once(
    jobs_dir: Path,
) -> None:
    """While the children imported a slow preload, a kill or a worker's hand-back of the
    job waited for the import (up to its limit, minutes) before it could take effect."""
    runner = Runner(python_pool=1, python_path=[str(jobs_dir)], preload=("pool_slow",))
    try:
        give_up = threading.Event()
        started = threading.Event()

        def start() -> Result:
            started.set()
            return finish(runner.start(1, tok("t-gone"), job("noop"), Recorder(), give_up=give_up))

        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(start)
            assert started.wait(TIMEOUT)
            give_up.set()
            result = waiting.result(TIMEOUT)
        assert result.spawn_failed
        assert "stopped before a Python child was ready" in (result.error or "")
        # the child goes on importing, and serves the next job
        assert finish(runner.start(2, tok("t-next"), job("noop"), Recorder())).succeeded
    finally:
        runner.close()


def test_a_child_that_dies_at_every_start_fails_the_job_as_spawn_failed(
    jobs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(python, "ACQUIRE_TIMEOUT", 1.0)
    runner = Runner(python_pool=1, python_path=[str(jobs_dir)], preload=("pool_dies",))
    try:
        started = time.monotonic()
        result = finish(runner.start(1, tok("t-dies"), job("noop"), Recorder()))
        assert result.spawn_failed
        assert "no Python child process became ready" in (result.error or "")
        assert time.monotonic() - started < TIMEOUT
    finally:
        runner.close()


def test_a_preload_that_exits_is_logged_and_the_child_serves_jobs_anyway(
    jobs_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module that raised SystemExit at import (argparse reading the child's arguments)
    ended every child: every Python job failed, spawn failed, and no warning said why."""
    monkeypatch.setattr(python, "ACQUIRE_TIMEOUT", 1.0)
    with caplog.at_level(logging.WARNING, logger="jobyard.runner.pool"):
        runner = Runner(python_pool=1, python_path=[str(jobs_dir)], preload=("pool_exits",))
    try:
        sink = Recorder()
        assert finish(runner.start(1, tok("t-exits"), job("argv"), sink)).succeeded
        [warning] = [r for r in caplog.records if "preload failed" in r.getMessage()]
        assert "SystemExit: no settings" in str(warning.__dict__)
    finally:
        runner.close()


def test_job_modules_see_no_arguments_of_the_child(make_runner: MakeRunner) -> None:
    runner = make_runner(1, preload=("pool_jobs", "pool_argv"))
    sink = Recorder()
    assert finish(runner.start(1, tok("t-argv"), job("argv"), sink)).succeeded
    assert sink.lines("stdout") == ["['jobyard-child'] ['jobyard-child']"]
