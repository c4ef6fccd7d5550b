"""The side-by-side benchmark's harness runs end to end (a smoke run, jobyard on SQLite only).

This checks that the harness produces a well-formed result, never how fast anything
is: speed is what ``make bench`` measures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.stage_hooks.sitecustomize import STAGES

from tests.databases import Servers

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_smoke_run_writes_its_section_and_raw_figures(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Benchmark results\n\n## Kept\nhand-written\n\n"
        "<!-- compare:start -->\nold figures\n<!-- compare:end -->\n\n## Also kept\n"
    )
    command = [sys.executable, "-m", "bench.compare", "--smoke", "--systems", "jobyard-sqlite"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]

    run = json.loads((tmp_path / "compare-results.json").read_text())
    assert run["systems"] == ["jobyard-sqlite"]
    assert run["anchors"] == []
    (figures,) = run["results"]
    assert "error" not in figures, figures
    assert figures["system"] == "jobyard-sqlite"
    for rate in ("jobs_per_s", "enqueue_per_s", "batch_per_s", "true_per_s"):
        assert figures[rate] > 0, rate
    assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"]
    assert set(figures["control_ms"]) == {"pause", "resume", "kill"}
    assert figures["cpu_ms_per_job"]["serve"] > 0
    assert figures["rss_loaded_mb"] >= figures["rss_idle_mb"] > 0
    assert "xacts_per_job" not in figures  # SQLite: not countable from outside
    assert run["spawn_floor_per_s"]
    assert run["spawn_floor_per_s"][0] > 0

    text = results.read_text()
    assert "## Kept\nhand-written" in text
    assert "## Also kept" in text
    assert "old figures" not in text
    assert text.count("<!-- compare:start -->") == text.count("<!-- compare:end -->") == 1
    assert "| jobyard-sqlite |" in text


def test_request_and_workflow_benchmarks_say_their_figures() -> None:
    """``bench_requests`` prints a CPU figure per route; ``bench_dag --threads`` the
    server's CPU by thread, named, with the run's own line."""
    requests = subprocess.run(
        [sys.executable, "bench/bench_requests.py", "--requests", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert requests.returncode == 0, requests.stderr[-4000:]
    routes = [line.split("  ")[0] for line in requests.stdout.splitlines()]
    assert routes == [
        "GET /healthz", "GET /api/v1/jobs/{id}", "GET /api/v1/jobs?per_page=10", "POST /api/v1/jobs"
    ]  # fmt: skip
    assert all("ms/request" in line for line in requests.stdout.splitlines())

    dag = subprocess.run(
        [sys.executable, "bench/bench_dag.py", "server", "--nodes", "20", "--threads"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert dag.returncode == 0, dag.stderr[-4000:]
    lines = dag.stdout.splitlines()
    assert lines[-1].startswith("server database=sqlite nodes=20 "), lines
    assert "all threads" in lines[-2]
    assert lines[-2].endswith("ms/job")
    assert any("ms/job" in line for line in lines[:-2])

    resumed = subprocess.run(
        [sys.executable, "bench/bench_dag.py", "resume", "--nodes", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert resumed.stdout.startswith("resume database=sqlite nodes=20 resume_s="), resumed.stdout


def test_the_slots_benchmark_says_a_workflows_switches_by_thread() -> None:
    done = subprocess.run(
        [sys.executable, "bench/bench_slots.py", "workflow", "--nodes", "20",
         "--concurrency", "2", "--by-thread"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    first, *threads = done.stdout.splitlines()
    assert first.startswith("20 nodes, 2 slots: "), first
    assert "claim → stored end p50" in first
    assert threads
    assert all(line.endswith(" a job") for line in threads), threads
    done = subprocess.run(
        [sys.executable, "bench/bench_slots.py", "chain", "--nodes", "10", "--concurrency", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.startswith("chain of 10 nodes, 2 slots: "), done.stdout
    assert "upstream's end → next claim p50" in done.stdout


def test_the_stages_benchmark_hears_every_stage_of_a_job() -> None:
    """``bench_stages`` stamps each job's way through the server: a hook that no longer
    finds its function (renamed, moved) stamps nothing, and this fails. A stamp that
    comes after the body (the send's return, the answer) may fall in the next job's
    window on a loaded machine: each stage is asked of some job, not of every one."""
    done = subprocess.run(
        [sys.executable, "bench/bench_stages.py", "--jobs", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("5 jobs; "), lines
    table = lines[1 : lines.index(next(line for line in lines if line.startswith("steps")))]
    seen = {line.split()[0]: int(line.split()[-1]) for line in table}
    every = {"client.sent", "client.answered", "body.started", *STAGES}
    assert {stage for stage in every if seen.get(stage, 0) < 1} == set()
    assert seen["client.sent"] == seen["body.started"] == 5


@pytest.mark.postgres
def test_insert_benchmark_says_both_ways(servers: Servers) -> None:
    """``bench_insert`` inserts through the store's path and the multi-row ``VALUES`` and
    prints the client's CPU and the wall time of each."""
    servers.admin_url("postgres")  # skips (or, in CI, fails) without the server
    done = subprocess.run(
        [sys.executable, "bench/bench_insert.py", "--rows", "20", "--times", "1", "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        "postgres store",
        "postgres multi-row VALUES",
    ]
    assert all("20 rows: client CPU" in line and line.endswith(" ms") for line in lines), lines
