"""``jobyard prune`` applies the configuration's retention once; ``--dry-run`` only counts."""

from __future__ import annotations

import json
from pathlib import Path

from jobyard.events.records import LogWritten
from jobyard.models import JobUpdate
from jobyard.states import JobState
from jobyard.store import Store
from tests.integration.test_backup import jobyard
from tests.stores import T0, add, claim


def old_failed_job(url: str) -> int:
    store = Store(url)
    try:
        [job] = add(store)
        claim(store)
        line = LogWritten(at=T0, seq=1, stream="stdout", line="old")
        store.jobs.append_output(job.id, [line], [], {})
        values = {"state": JobState.FAILED, "finished_at": T0}
        store.jobs.update_job(JobUpdate(job.id, frozenset({JobState.RUNNING}), values), T0)
        return job.id
    finally:
        store.close()


def test_prune_counts_then_removes(sqlite_url: str, tmp_path: Path) -> None:
    job_id = old_failed_job(sqlite_url)
    config = tmp_path / "jobyard.yaml"
    config.write_text("retention: {audit: forever}\n")
    base = ("--database-url", sqlite_url, "--config", str(config))
    dry = jobyard("prune", "--dry-run", *base, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert "jobs          1 would go (older than 30d)" in lines
    assert "logs          1 would go (older than 7d)" in lines
    assert "audit         kept for ever" in lines
    assert "runs          0 would go (older than 30d)" in lines
    assert "fires         0 would go (older than 30d)" in lines
    store = Store(sqlite_url)
    assert store.jobs.get_job(job_id) is not None  # a dry run removes nothing
    done = jobyard("prune", "--json", *base, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows"]["jobs"] == 1
    assert report["rows"]["audit"] is None
    assert store.jobs.get_job(job_id) is None
    assert store.jobs.job_events(job_id) == []
    store.close()


def test_a_bad_retention_value_is_a_usage_error(sqlite_url: str, tmp_path: Path) -> None:
    config = tmp_path / "jobyard.yaml"
    config.write_text("retention:\n  jobs: sometimes\n")
    bad = jobyard("prune", "--config", str(config), "--database-url", sqlite_url, cwd=tmp_path)
    assert bad.returncode == 2
    assert f"{config}:2: retention.jobs: invalid duration 'sometimes'" in bad.stderr
