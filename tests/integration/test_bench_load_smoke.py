"""The load benchmark runs end to end (a seconds-long smoke run): its report is well formed.

This checks the harness, never how fast anything is: speed is what the full run measures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_a_short_load_run_reports_latencies_and_no_5xx() -> None:
    command = [sys.executable, "bench/bench_load.py", "--seconds", "3", "--clients", "10"]
    done = subprocess.run(
        [*command, "--followers", "5"], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert result["requests"] > 0
    assert result["statuses"].get("201", 0) > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert result["streams_open"] == 5
    assert result["other_5xx"] == {}
    assert result["transport_errors"] == {}
