"""Monitoring on a real server: resource samples, a learned runtime budget, ``/metrics``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import Server, wait_for

CONFIG = """
job_types:
  quick:
    command: [sleep, "{seconds}"]
    params:
      seconds: {type: number, default: 0.05}
    sla: {expected: auto, factor: 4}
  hungry:
    description: holds 60 MB and burns CPU until told to stop
    command: [python3, -c, "import time\\nx = bytearray(60_000_000)\\nwhile True: pass"]
    kill_grace: 1s
  fails:
    command: [sh, -c, "exit 1"]
  overrun:
    command: [sleep, "3"]
    sla: {max_runtime: 0.5s}
  loud:
    command: [python3, -c, "print('x' * 80_039)"]
    sla: {max_output: 50kB}
notifications:
  retry: {max_attempts: 1}
  channels:
    one: {type: webhook, url: "http://127.0.0.1:9/one", timeout: 1s}
    two: {type: webhook, url: "http://127.0.0.1:9/two", timeout: 1s}
  rules:
    - events: [sla_breach]
      channels: [one, two]
      job_types: [overrun]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("monitoring")
    config = workdir / "jobyard.yaml"
    config.write_text(CONFIG)
    url = f"sqlite:///{workdir / 'jobs.db'}"
    server = Server(database_url=url, workdir=workdir, config=config).start()
    yield server
    server.stop()


def submit(server: Server, job_type: str, **args: Any) -> int:
    response = server.client.post("/api/v1/jobs", json={"type": job_type, "args": args})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def metrics(server: Server) -> dict[str, list[Any]]:
    response = server.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.text):
        found.setdefault(family.name, []).extend(family.samples)
    return found


def value(
    found: dict[str, list[Any]], name: str, sample: str | None = None, **labels: str
) -> float:
    for item in found.get(name, []):
        if (sample is None or item.name == sample) and all(
            item.labels.get(k) == v for k, v in labels.items()
        ):
            return float(item.value)
    raise AssertionError(f"no {sample or name} {labels} in /metrics")


def test_a_running_job_keeps_a_time_series_of_cpu_and_memory(server: Server) -> None:
    job_id = submit(server, "hungry")

    def enough() -> list[dict[str, Any]] | None:
        items = server.client.get(f"/api/v1/jobs/{job_id}/samples").json()["items"]
        return items if len(items) >= 3 else None

    items = wait_for(enough, what="three resource samples")
    assert all(item["attempt"] == 1 for item in items)
    assert max(item["rss"] for item in items) > 50_000_000  # the whole tree's memory
    cpu = [item["cpu_seconds"] for item in items]
    assert cpu == sorted(cpu)
    assert cpu[-1] > cpu[0]
    assert server.act(job_id, "kill").status_code == 202
    job = server.wait_state(job_id, "killed")
    assert job["resources"]["peak_memory_bytes"] > 50_000_000
    assert job["resources"]["cpu_seconds"] > 0
    assert server.client.get("/api/v1/jobs/999999/samples").status_code == 404


def test_a_running_job_shows_its_runtime_cpu_and_memory_so_far(server: Server) -> None:
    job_id = submit(server, "hungry")

    def using() -> dict[str, Any] | None:
        res: dict[str, Any] = server.job(job_id)["resources"]
        # Sampled once a second from its first second on: the 60 MB show in a sample
        # taken after the interpreter allocated them (seconds, on a loaded machine).
        busy = res["cpu_seconds"] and (res["peak_memory_bytes"] or 0) > 50_000_000
        return res if busy and (res["runtime_seconds"] or 0) >= 1 else None

    first = wait_for(using, what="the running job's runtime, CPU and 60 MB of memory")
    listed = server.client.get("/api/v1/jobs", params={"type": "hungry", "state": "running"})
    [item] = [item for item in listed.json()["items"] if item["id"] == job_id]
    assert item["resources"]["cpu_seconds"] >= first["cpu_seconds"]
    assert item["resources"]["peak_memory_bytes"] >= first["peak_memory_bytes"]
    later = wait_for(
        lambda: _ran_longer(server, job_id, first["runtime_seconds"] + 1),
        what="the runtime to count on while nothing is written",
    )
    assert later["cpu_seconds"] >= first["cpu_seconds"]
    panel = subprocess.run(
        [sys.executable, "-m", "jobyard", "show", str(job_id), "--server", server.url],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"COLUMNS": "200", "NO_COLOR": "1"},
        check=True,
    ).stdout
    shown = dict(line.split(maxsplit=1) for line in _rows(panel, "runtime", "cpu"))
    assert _seconds(shown["runtime"]) >= later["runtime_seconds"]
    assert _seconds(shown["cpu"]) > 0
    assert "peak memory" in panel
    assert server.job(job_id)["state"] == "running"
    assert server.act(job_id, "kill").status_code == 202
    server.wait_state(job_id, "killed")


def _ran_longer(server: Server, job_id: int, seconds: float) -> dict[str, Any] | None:
    res: dict[str, Any] = server.job(job_id)["resources"]
    return res if res["runtime_seconds"] >= seconds else None


def _seconds(shown: str) -> float:
    """A duration as the CLI writes one under a minute (``850 ms``, ``4.2 s``), in seconds."""
    figure, unit = shown.split()
    return float(figure) * {"ms": 0.001, "s": 1.0}[unit]


def _rows(panel: str, *names: str) -> list[str]:
    """The panel's lines that start with one of ``names`` (a name and its value)."""
    lines = [line.strip(" │|") for line in panel.splitlines()]
    return [line for line in lines if line.split(maxsplit=1)[:1] and line.split()[0] in names]


def test_expected_auto_learns_the_usual_runtime_and_warns_on_a_slow_run(server: Server) -> None:
    for _ in range(5):  # the baseline: five quick successes
        server.wait_state(submit(server, "quick"), "succeeded")
    slow = submit(server, "quick", seconds=30)

    def breach() -> list[dict[str, Any]]:
        params = {"job": slow, "event": "sla_breach"}
        items: list[dict[str, Any]] = server.client.get(
            "/api/v1/notifications", params=params
        ).json()["items"]
        return items

    [note] = wait_for(breach, what="the sla_breach of the slow run")
    sla = note["data"]["sla"]
    assert sla["budget"] == "expected"
    assert sla["action"] == "notify"  # a learned budget warns, it never kills
    assert sla["value"] > sla["limit"]
    assert sla["limit"] < 10  # four times the p95 of runs that each took a fraction of a second
    assert server.job(slow)["state"] == "running"
    assert server.act(slow, "kill").status_code == 202
    server.wait_state(slow, "killed")


def test_the_dashboard_tells_a_breach_once_whatever_the_channels_it_went_to(
    server: Server,
) -> None:
    job = submit(server, "overrun")

    def notes() -> list[dict[str, Any]]:
        params = {"job": job, "event": "sla_breach"}
        items: list[dict[str, Any]] = server.client.get(
            "/api/v1/notifications", params=params
        ).json()["items"]
        return items if len(items) == 2 else []

    assert {note["channel"] for note in wait_for(notes, what="a note per channel")} == {
        "one",
        "two",
    }
    page = server.client.get("/").text
    breaches = page[page.index('id="breaches"') :]
    told = [line for line in breaches.splitlines() if f'href="/jobs/{job}">#{job}</a>' in line]
    assert len(told) == 1, told
    assert "went over its max_runtime budget" in " ".join(page.split())


def test_a_jobs_page_shows_its_budgets_and_breaches_in_their_units(server: Server) -> None:
    loud, slow = submit(server, "loud"), submit(server, "overrun")

    def breached(job_id: int) -> str | None:
        page = server.client.get(f"/jobs/{job_id}").text
        return page if "Over the" in page else None

    page = wait_for(lambda: breached(loud), what="the output budget's breach on the page")
    assert "<dt>output</dt><dd>50.0 kB</dd>" in page  # not "50000 bytes"
    assert re.search(r"Over the max_output budget at [\d :-]+: 80\.0 kB &gt; 50\.0 kB", page)
    page = wait_for(lambda: breached(slow), what="the runtime budget's breach on the page")
    assert "<dt>runtime</dt><dd>500 ms</dd>" in page
    over = r"Over the max_runtime budget at [\d :-]+: (\d+ ms|\d\.\d s) &gt; 500 ms \(notify\)"
    assert re.search(over, page), page
    server.wait_state(slow, "succeeded")


def test_metrics_report_jobs_queues_histograms_and_workers(server: Server) -> None:
    for _ in range(2):
        server.wait_state(submit(server, "fails"), "failed")

    def scraped() -> dict[str, list[Any]] | None:
        found = metrics(server)  # cached for a few seconds: poll until this test's jobs show
        return found if value(found, "jobyard_jobs", state="failed", type="fails") >= 2 else None

    found = wait_for(lambda: _safe(scraped), what="the failed jobs in /metrics")
    assert value(found, "jobyard_workers_alive") == 1
    count = value(
        found, "jobyard_job_duration_seconds", "jobyard_job_duration_seconds_count", type="fails"
    )
    assert count >= 2
    inf = value(
        found,
        "jobyard_job_duration_seconds",
        "jobyard_job_duration_seconds_bucket",
        type="fails",
        le="+Inf",
    )
    assert inf == count
    waits = value(
        found,
        "jobyard_dispatch_latency_seconds",
        "jobyard_dispatch_latency_seconds_count",
        queue="default",
    )
    assert waits >= 2
    assert "jobyard_queue_depth" in found
    assert "jobyard_sla_breaches" in found
    for channel in ("one", "two"):  # a configured channel is told, at 0 when nothing waits
        assert value(found, "jobyard_notifications_pending", channel=channel) >= 0


def _safe(probe: Any) -> Any:
    try:
        return probe()
    except AssertionError:
        return None
