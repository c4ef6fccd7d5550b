"""Job types declared with ``@jobyard.job`` run on a real server like the ones in YAML."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobyard.client import Client, Invalid
from tests.harness import FIXTURES, Server, shared_server

server = shared_server(backends=["sqlite"], config=FIXTURES / "declared.yaml")


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, poll_interval=0.05, reconnect_delay=0.05) as client:
        yield client


def test_declared_types_are_listed_with_their_schema(client: Client) -> None:
    types = {t.name: t for t in client.job_types()}
    assert {"echo", "tally", "report-window", "shout"} <= set(types)
    tally = client.job_type("tally")
    assert (tally.kind, tally.source) == ("python", "config")
    assert tally.definition["python"] == "declared_jobs:tally"
    assert tally.params["required"] == ["n"]
    assert tally.defaults == {"label": "rows", "mode": "fast"}
    assert tally.description == "Count to n, reporting progress; returns the count as a metric."


def test_a_declared_function_runs_in_the_python_child(client: Client) -> None:
    job = client.submit("tally", {"n": 3, "label": "files"})
    done = client.wait(job.id, timeout=60)
    assert done.state == "succeeded", done.error
    assert done.metrics["files"] == 3
    assert done.progress.fraction == 1.0
    assert done.sla is not None
    assert done.sla["max_runtime"] == 600
    lines = [line.line for line in client.iter_logs(job.id) if line.stream == "stdout"]
    assert lines == ["fast tally of 3 files"]


def test_arguments_are_checked_against_the_declared_params(client: Client) -> None:
    with pytest.raises(Invalid) as raised:
        client.submit("tally", {"n": "three", "mode": "medium"})
    fields = {error["field"] for error in raised.value.errors}
    assert fields == {"args.n", "args.mode"}
    with pytest.raises(Invalid, match="less than the minimum of 1"):
        client.submit("report-window", {"days": 0})
    job = client.submit("report-window", {"days": 7})
    assert client.wait(job.id, timeout=60).state == "succeeded"
    assert job.args == {"days": 7, "region": "eu"}
