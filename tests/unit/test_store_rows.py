"""Pure parts of the store: URLs, the jobs table's shape, value conversion."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from jobyard.models import Job, JobSpec
from jobyard.states import Control, JobState
from jobyard.store.engine import normalize_url
from jobyard.store.rows import job_columns
from jobyard.store.tables import jobs


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@db:5432/jobs", "postgresql+psycopg://u@db:5432/jobs"),
        ("postgres://u:pw@db/jobs", "postgresql+psycopg://u:pw@db/jobs"),
        ("postgresql+psycopg://u@db/jobs", "postgresql+psycopg://u@db/jobs"),
        ("mysql://root@db:3306/jobs", "mysql+pymysql://root@db:3306/jobs?charset=utf8mb4"),
        ("mariadb://root@db/jobs", "mysql+pymysql://root@db/jobs?charset=utf8mb4"),
        ("mysql://root@db/jobs?charset=utf8", "mysql+pymysql://root@db/jobs?charset=utf8"),
        ("sqlite:///jobs.db", "sqlite:///jobs.db"),
        ("sqlite:////var/lib/jobyard/jobs.db", "sqlite:////var/lib/jobyard/jobs.db"),
    ],
)
def test_bare_urls_get_the_bundled_driver(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=False) == expected


def test_the_jobs_table_has_exactly_the_fields_of_a_job() -> None:
    assert list(jobs.c.keys()) == [field.name for field in dataclasses.fields(Job)]


def test_job_values_become_column_values() -> None:
    spec = JobSpec(python="m:f")
    values = {"state": JobState.HELD, "control": Control.KILL, "spec": spec, "pid": 7}
    assert job_columns(values) == {
        "state": "held",
        "control": "kill",
        "spec": spec.to_dict(),
        "pid": 7,
    }


@pytest.mark.parametrize("name", ["id", "colour"])
def test_only_writable_job_fields_are_accepted(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        job_columns({name: 1})


def _fields() -> dict[str, Any]:
    """A job's fields, those without a default only."""
    at = datetime(2026, 3, 1, tzinfo=UTC)
    given = {"id": 1, "type": "t", "name": None, "args": {}, "spec": JobSpec(argv=["true"])}
    given |= {"queue": "q", "priority": 0, "state": JobState.QUEUED, "control": None}
    return given | {"created_at": at, "updated_at": at, "metrics": {"rows": 1}, "details": {}}


def test_a_job_from_its_fields_is_the_job_its_init_makes() -> None:
    job = Job.from_fields(_fields())
    assert job == Job(**_fields())
    assert (job.attempt, job.route, job.metrics) == (0, "", {"rows": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.attempt = 2  # type: ignore[misc]


@pytest.mark.parametrize(("change", "named"), [("drop", "metrics"), ("add", "colour")])
def test_a_job_from_fields_missing_or_unknown_is_refused(change: str, named: str) -> None:
    given = _fields()
    if change == "drop":
        del given[named]
    else:
        given[named] = "blue"
    with pytest.raises(TypeError, match=named):
        Job.from_fields(given)


def test_an_evolved_job_is_the_one_replace_makes() -> None:
    job = Job(**_fields())
    changes = {"state": JobState.RUNNING, "attempt": 1, "pid": 42}
    evolved = job.evolve(**changes)
    assert evolved == dataclasses.replace(job, **changes)
    assert (job.state, job.attempt, job.pid) == (JobState.QUEUED, 0, None)  # left as it was
    with pytest.raises(dataclasses.FrozenInstanceError):
        evolved.attempt = 2  # type: ignore[misc]
    with pytest.raises(TypeError, match="colour"):
        job.evolve(colour="blue")
