"""The ``retention:`` section: ages or ``forever``, defaults for what is not given,
and every problem as ``file:line: field: message``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from jobyard.config import load_config
from jobyard.retention.policy import RetentionPolicy
from tests.unit.test_config import errors, write

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def test_ages_forever_and_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path, "retention:\n  jobs: 90d\n  logs: forever\n  events: null\n  audit: 3600\n"
    )
    policy = load_config(path).retention
    assert policy.cutoff("jobs", NOW) == NOW - timedelta(days=90)
    assert policy.cutoff("logs", NOW) is None
    assert policy.cutoff("events", NOW) is None
    assert policy.audit == 3600.0
    assert policy.samples == RetentionPolicy().samples == 7 * 86400  # not given: the default
    assert policy.describe()["jobs"] == "90d"
    assert policy.describe()["logs"] == "forever"


def test_without_the_section_the_defaults_apply(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "queues: {}\n")).retention == RetentionPolicy()
    assert RetentionPolicy().describe() == {
        "jobs": "30d", "logs": "7d", "events": "30d",
        "samples": "7d", "notifications": "30d", "audit": "365d",
        "runs": "30d", "fires": "30d",
    }  # fmt: skip


def test_problems_name_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "queues: {}\nretention:\n  jobs: soon\n  log: 7d\n  audit: 0\n")
    found = errors(path)
    assert any(e.startswith(f"{path}:3: retention.jobs: invalid duration 'soon'") for e in found)
    assert any(e.startswith(f"{path}:4: retention.log: unknown key") for e in found)
    assert any(e.startswith(f"{path}:5: retention.audit:") and "above zero" in e for e in found)
    assert errors(write(tmp_path, "retention: 30d\n")) == [
        f"{tmp_path / 'jobyard.yaml'}:1: retention: must be a mapping like {{jobs: 30d, logs: 7d}}"
    ]
