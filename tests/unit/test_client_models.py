"""The client's models against the server's response models: same fields, typed package."""

from __future__ import annotations

import dataclasses
from importlib.resources import files

import pytest
from pydantic import BaseModel

import jobyard
from jobyard.api import notifications, schemas, workers
from jobyard.client import models as client

PAIRS = [
    (schemas.JobOut, client.JobInfo),
    (schemas.Progress, client.Progress),
    (schemas.Resources, client.Resources),
    (schemas.DependencyOut, client.Dependency),
    (schemas.JobPage, client.JobPage),
    (schemas.LogLineOut, client.LogLine),
    (schemas.LogPage, client.LogPage),
    (schemas.JobTypeOut, client.JobTypeInfo),
    (workers.WorkerOut, client.WorkerStatus),
    (notifications.NotificationOut, client.Notification),
    (notifications.NotificationPage, client.NotificationPage),
]


@pytest.mark.parametrize(("server", "model"), PAIRS, ids=[m.__name__ for _, m in PAIRS])
def test_the_client_keeps_every_field_the_server_sends(
    server: type[BaseModel], model: type[object]
) -> None:
    fields = {f.name for f in dataclasses.fields(model)}  # type: ignore[arg-type]
    assert set(server.model_fields) == fields


def test_a_job_keeps_its_sla_and_dependencies() -> None:
    data = {
        "id": 3,
        "sla": {"max_runtime": 60.0, "on_breach": "kill"},
        "depends_on": [{"job": 1, "on": "failed", "state": "running", "newer": True}],
    }
    job = client.JobInfo.from_dict(data)
    assert job.sla == {"max_runtime": 60.0, "on_breach": "kill"}
    assert job.depends_on == [client.Dependency(job=1, on="failed", state="running")]
    assert client.JobInfo.from_dict({"id": 4}).depends_on == []


def test_the_package_is_marked_typed() -> None:
    marker = files(jobyard) / "py.typed"
    assert marker.is_file()
