"""The shipped Grafana dashboard asks only for series a real server exports, and for all of them;
and the API's own request series, which the dashboard plots, count what they say."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.databases import BACKENDS
from tests.deployfiles import GRAFANA
from tests.harness import Server, shared_server, wait_for

server = shared_server(backends=[BACKENDS[0]])  # SQLite: the names do not depend on it

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACES = re.compile(r"\{[^}]*\}|\[[^\]]*\]")  # label matchers, ranges
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NUMBERS = re.compile(r"(?<![\w:])\d[\w.]*")  # 0.95, 5m, 1e3
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right"}
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords apart)."""
    bare = _NUMBERS.sub(" ", _GROUPING.sub(" ", _BRACES.sub(" ", _STRINGS.sub(" ", expr))))
    names = set()
    for match in _NAME.finditer(bare):
        rest = bare[match.end() :].lstrip()
        if rest.startswith("(") or match.group() in _KEYWORDS:
            continue  # a function or an aggregation
        names.add(match.group())
    return names


def expressions(dashboard: dict[str, Any]) -> Iterator[str]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":  # Grafana's label_values(SELECTOR, LABEL)
            found = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["definition"])
            assert found, variable["definition"]
            yield found.group(1)


def exported(text: str) -> dict[str, set[str]]:
    """Each family the server exports with every series name it may take."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.endswith("_created"):
            continue  # the creation times prometheus_client adds to counters and histograms
        suffixes = _SUFFIXES.get(family.type, ("",))
        found[family.name] = {family.name + s for s in suffixes}
    return found


def test_the_metric_name_regex() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (route, le) (rate(a_bucket{x="b(c)"}[5m])))'
        " / on (instance) group_left b_total offset 5m and bool c"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def test_every_series_of_the_dashboard_is_exported(server: Server) -> None:
    job = server.submit("echo", args={"text": "for the histograms"})
    server.wait_state(job["id"], "succeeded")

    def scraped() -> str | None:
        text = server.client.get("/metrics").text
        # the cluster numbers are kept 5 s: wait until they count the job
        return text if "jobyard_job_duration_seconds_count" in text else None

    families = exported(wait_for(scraped, timeout=30, what="the job in /metrics"))
    dashboard = json.loads(GRAFANA.read_text())
    used = set().union(*(metric_names(e) for e in expressions(dashboard)))
    series = set().union(*families.values())
    assert used, "no expression found"
    assert used <= series, f"not exported: {sorted(used - series)}"
    unused = {name for name, names in families.items() if not names & used}
    assert not unused, f"exported but not on the dashboard: {sorted(unused)}"


@pytest.mark.parametrize("kind", ["timeseries", "stat"], ids=["timeseries panels", "stat panels"])
def test_the_panels_use_the_datasource_variable(kind: str) -> None:
    dashboard = json.loads(GRAFANA.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] == kind]
    assert panels
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def _sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return None


def test_requests_are_counted_by_route_template_and_status(server: Server) -> None:
    job = server.submit("echo", args={"text": "counted"})
    for _ in range(3):
        server.job(job["id"])
    assert server.client.get("/api/v1/no-such-thing").status_code == 404
    text = server.client.get("/metrics").text
    route = {"method": "GET", "route": "/api/v1/jobs/{job_id}"}
    assert (_sample(text, "jobyard_http_requests_total", **route, status="200") or 0) >= 3
    unmatched = {"route": "unmatched", "status": "404"}
    assert (_sample(text, "jobyard_http_requests_total", **unmatched) or 0) >= 1
    count = _sample(text, "jobyard_http_request_duration_seconds_count", **route)
    assert count is not None
    assert count >= 3
    assert f"/api/v1/jobs/{job['id']}" not in text  # templates, never the paths themselves
