"""OpenTelemetry traces of a real server: a span per request and per job attempt, ids in logs.

The server runs with the SDK's console exporter (``OTEL_TRACES_EXPORTER=console``),
which writes each finished span as JSON on stdout; its JSON logs go to stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import ADMIN, CONFIG, free_port, wait_for

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"  # a caller's, in its traceparent header


@dataclass
class Traced:
    client: httpx.Client
    spans_file: Path
    logs_file: Path

    def spans(self) -> list[dict[str, Any]]:
        """Every span exported so far (the console exporter prints indented JSON)."""
        text, found, at = self.spans_file.read_text(), [], 0
        decoder = json.JSONDecoder()
        while (at := _skip_space(text, at)) < len(text):
            try:
                span, at = decoder.raw_decode(text, at)
            except json.JSONDecodeError:
                break  # a span being written
            found.append(span)
        return found

    def span(self, name: str, **attributes: Any) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            for span in self.spans():
                if span["name"] == name and attributes.items() <= span["attributes"].items():
                    return span
            return None

        return wait_for(probe, timeout=30, interval=0.2, what=f"a span {name} {attributes}")

    def log_lines(self) -> list[dict[str, Any]]:
        lines = self.logs_file.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


@pytest.fixture(scope="module")
def traced(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    workdir = tmp_path_factory.mktemp("traced")
    database = workdir / "jobyard.db"
    shutil.copyfile(sqlite_template, database)
    port = free_port()
    env = os.environ | {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: spans reach the file soon
        "JOBYARD_LOG_FORMAT": "json",
        "JOBYARD_ADMIN_PASSWORD": ADMIN[1],
        "JOBYARD_PYTHON_POOL": "0",
    }
    command = [
        sys.executable, "-m", "jobyard", "serve", "--port", str(port),
        "--config", str(CONFIG), "--database-url", f"sqlite:///{database}",
        "--access-log",  # its lines carry the trace ids of their requests
    ]  # fmt: skip
    spans, logs = workdir / "spans.json", workdir / "server.log"
    with spans.open("wb") as out, logs.open("wb") as err:
        proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=err)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=ADMIN, timeout=30)
    try:
        wait_for(lambda: _healthy(client, proc, logs), timeout=60, what="the traced server")
        yield Traced(client, spans, logs)
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _healthy(client: httpx.Client, proc: subprocess.Popen[bytes], logs: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"the server exited with {proc.returncode}:\n{logs.read_text()}")
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def _finished(traced: Traced, job_id: int) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        job: dict[str, Any] = traced.client.get(f"/api/v1/jobs/{job_id}").json()
        return job if job["finished_at"] else None

    return wait_for(probe, timeout=60, what=f"job {job_id} to end an attempt")


def test_a_request_is_a_server_span_named_after_its_route(traced: Traced) -> None:
    created = traced.client.post("/api/v1/jobs", json={"type": "echo", "args": {"text": "hi"}})
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    assert traced.client.get(f"/api/v1/jobs/{job_id}").status_code == 200
    span = traced.span("GET /api/v1/jobs/{job_id}", **{"url.path": f"/api/v1/jobs/{job_id}"})
    assert span["kind"] == "SpanKind.SERVER"
    assert span["attributes"]["http.route"] == "/api/v1/jobs/{job_id}"
    assert span["attributes"]["http.response.status_code"] == 200
    assert traced.span("POST /api/v1/jobs")["attributes"]["http.response.status_code"] == 201


def test_a_job_attempt_is_a_span_with_its_outcome(traced: Traced) -> None:
    ok = traced.client.post("/api/v1/jobs", json={"type": "echo", "args": {"text": "x"}}).json()
    bad = traced.client.post("/api/v1/jobs", json={"type": "fail", "args": {"code": 3}}).json()
    span = traced.span("job echo", **{"jobyard.job.id": ok["id"]})
    assert span["attributes"]["jobyard.job.type"] == "echo"
    assert span["attributes"]["jobyard.job.attempt"] == 1
    assert span["attributes"]["jobyard.job.outcome"] == "succeeded"
    assert span["attributes"]["jobyard.job.exit_code"] == 0
    failed = traced.span("job fail", **{"jobyard.job.id": bad["id"], "jobyard.job.attempt": 1})
    assert failed["attributes"]["jobyard.job.outcome"] == "failed"
    assert failed["attributes"]["jobyard.job.reason"] == "exit_code"
    assert failed["attributes"]["jobyard.job.exit_code"] == 3
    assert failed["status"]["status_code"] == "ERROR"


def test_a_caller_s_trace_continues_and_its_id_is_in_the_json_logs(traced: Traced) -> None:
    traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    response = traced.client.get("/api/v1/job-types", headers={"traceparent": traceparent})
    assert response.status_code == 200
    span = traced.span("GET /api/v1/job-types")
    assert span["context"]["trace_id"] == f"0x{TRACE_ID}"
    assert span["parent_id"] == "0x00f067aa0ba902b7"

    def logged() -> dict[str, Any] | None:
        for line in traced.log_lines():
            if line.get("trace_id") == TRACE_ID:
                return line
        return None

    line = wait_for(logged, timeout=30, what="a log line of the traced request")
    assert "/api/v1/job-types" in line["message"]  # uvicorn's access line
    assert line["span_id"] == span["context"]["span_id"].removeprefix("0x")
