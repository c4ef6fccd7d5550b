"""Pure parts of the store: URLs, the jobs table's shape, value conversion."""

from __future__ import annotations

import dataclasses

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
