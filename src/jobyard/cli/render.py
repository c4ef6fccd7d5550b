"""Rich renderings of jobs and job types for the terminal (imported by commands only)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from jobyard.cli.common import counted
from jobyard.cli.tables import Column, fit_table
from jobyard.client.models import JobInfo, JobTypeInfo
from jobyard.client.records import Sample
from jobyard.units import duration, size

STATE_STYLES = {
    "held": "bright_black",
    "scheduled": "cyan",
    "waiting": "cyan",
    "queued": "yellow",
    "running": "bold blue",
    "paused": "magenta",
    "succeeded": "green",
    "failed": "bold red",
    "killed": "red",
    "upstream_failed": "red",
}
NONE = "—"


def console(stderr: bool = False) -> Console:
    # markup=False: names, descriptions and patterns are shown as written, brackets and all.
    return Console(stderr=stderr, highlight=False, soft_wrap=False, markup=False)


def state_text(state: str, control: str | None = None) -> Text:
    """The state in its colour; an intent its worker has yet to carry out follows it."""
    text = Text(state, style=STATE_STYLES.get(state, ""))
    if control:
        text.append(f" → {control}", style="italic")
    return text


def moment(when: datetime | None) -> str:
    """A time in the local time zone."""
    return _local(when).strftime("%Y-%m-%d %H:%M:%S") if when else NONE


def short_moment(when: datetime) -> str:
    """A local time: only the time of day if it is today."""
    local = _local(when)
    today = datetime.now(local.tzinfo).date() == local.date()
    return local.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M")


def _local(when: datetime) -> datetime:
    """``when`` in the local time zone; as it is where that is past year 9999 (or 1)."""
    try:
        return when.astimezone()
    except (OverflowError, ValueError):
        return when


def progress(job: JobInfo) -> str:
    fraction, message = job.progress.fraction, job.progress.message
    parts = [f"{fraction:.0%}" if fraction is not None else "", message or ""]
    return " ".join(part for part in parts if part) or NONE


JOB_COLUMNS = (
    Column("id", "key", justify="right"),
    Column("type", "key"),
    Column("name", "words", drop=5, fold=True),
    Column("state", "fixed"),
    Column("progress", "text", drop=2),
    Column("attempt", "fixed", drop=1),
    Column("created", "fixed", drop=4),
    Column("runtime", "fixed", drop=3, justify="right"),
)


def jobs_table(jobs: Iterable[JobInfo], *, title: str | None = None, caption: str = "") -> Table:
    """id, type, name, state, progress, attempt, created, runtime: one job a row.

    In a narrow terminal attempt, progress, runtime, created and name are left
    out in that order rather than cutting an id or a type; a long name is folded
    onto more lines first.
    """
    rows = [
        (
            str(job.id),
            job.type,
            job.name or "",
            state_text(job.state, job.control),
            progress(job),
            f"{job.attempt}/{job.max_attempts}",
            short_moment(job.created_at),
            duration(job.resources.runtime_seconds, compact=True),
        )
        for job in jobs
    ]
    return fit_table(JOB_COLUMNS, rows, title=title, caption=caption or None, title_justify="left")


def job_panel(job: JobInfo, samples: Sequence[Sample] = ()) -> Panel:
    """Everything the API shows of one job, with sparklines of its last attempt's samples."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in [*_job_rows(job), *_usage_rows(samples)]:
        if value not in (None, "", {}, []):
            grid.add_row(label, value)
    return Panel(grid, title=f"job {job.id}", title_align="left", expand=False)


BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 40


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """``values`` as Unicode blocks, lowest ▁ to highest █; long series are averaged down
    to ``width`` blocks."""
    if not values:
        return ""
    points = list(values)
    if len(points) > width:
        cuts = [i * len(points) // width for i in range(width + 1)]
        points = [sum(points[a:b]) / (b - a) for a, b in itertools.pairwise(cuts) if b > a]
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[round((point - low) / span * top)] for point in points)


def cpu_percents(samples: Sequence[Sample]) -> list[float]:
    """CPU use between consecutive samples, in % of one core (the samples hold CPU time)."""
    shares = []
    for before, after in itertools.pairwise(samples):
        elapsed = (after.at - before.at).total_seconds()
        if elapsed > 0:
            shares.append(max(0.0, after.cpu_seconds - before.cpu_seconds) / elapsed * 100)
    return shares


def _usage_rows(samples: Sequence[Sample]) -> list[tuple[str, Any]]:
    """One ``samples`` row: sparklines of CPU use and memory over the last attempt sampled."""
    if not samples:
        return []
    last = max(sample.attempt for sample in samples)
    mine = [sample for sample in samples if sample.attempt == last]
    cpu = cpu_percents(mine)
    rss = [float(sample.rss) for sample in mine]
    lines = [f"attempt {last}, {len(mine)} taken"]
    if cpu:
        lines.append(f"CPU {sparkline(cpu)}  {min(cpu):.0f} to {max(cpu):.0f} %")
    lines.append(f"RSS {sparkline(rss)}  {size(min(rss))} to {size(max(rss))}")
    return [("samples", "\n".join(lines))]


def _job_rows(job: JobInfo) -> list[tuple[str, Any]]:
    res = job.resources
    return [
        ("type", job.type),
        ("name", job.name),
        ("state", state_text(job.state, job.control)),
        ("reason", job.reason),
        ("exit code", None if job.exit_code is None else str(job.exit_code)),
        ("error", Text(job.error, style="red") if job.error else None),
        ("command", " ".join(job.command) if job.command else None),
        ("python", job.python),
        ("args", _json(job.args)),
        ("queue", job.queue),
        ("priority", str(job.priority)),
        ("attempt", f"{job.attempt}/{job.max_attempts}"),
        ("restarts", str(job.restart_count) if job.restart_count else None),
        ("progress", progress(job) if job.progress.fraction or job.progress.message else None),
        ("created", short_moment(job.created_at)),
        ("run at", short_moment(job.run_at) if job.run_at else None),
        ("started", short_moment(job.started_at) if job.started_at else None),
        ("finished", short_moment(job.finished_at) if job.finished_at else None),
        ("runtime", duration(res.runtime_seconds) if res.runtime_seconds is not None else None),
        ("paused", duration(res.paused_seconds) if res.paused_seconds else None),
        ("cpu", duration(res.cpu_seconds) if res.cpu_seconds is not None else None),
        ("peak memory", size(res.peak_memory_bytes) if res.peak_memory_bytes else None),
        ("output", f"{size(res.output_bytes)} in {res.log_lines} lines"),
        ("metrics", _json(job.metrics) if job.metrics else None),
        ("details", _json(job.details) if job.details else None),  # a class job's details()
        ("worker", _where(job)),
        ("workflow run", _run(job)),
        ("restarted from", _link(job.restarted_from)),
        ("restarted as", _link(job.restarted_as)),
        ("idempotency key", job.idempotency_key),
    ]


def _where(job: JobInfo) -> str | None:
    parts = [
        job.worker,
        f"on {job.host}" if job.host else None,
        f"pid {job.pid}" if job.pid else None,
    ]
    return " ".join(p for p in parts if p) or None


def _run(job: JobInfo) -> str | None:
    if job.workflow_run is None:
        return None
    return f"{job.workflow_run}, node {job.node} (jobyard runs show {job.workflow_run})"


def _link(job_id: int | None) -> str | None:
    return f"job {job_id} (jobyard show {job_id})" if job_id is not None else None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


TYPE_COLUMNS = (
    Column("name", "key"),
    Column("kind", "fixed", drop=2),
    Column("source", "fixed", drop=1),
    Column("params", "words", drop=3),
    Column("description", "text", drop=4),
)


def types_table(types: Sequence[JobTypeInfo]) -> Table:
    """name, kind, source, params (``*`` marks the required ones), description."""
    rows = []
    for job_type in types:
        required = set(job_type.params.get("required", []))
        names = [n + ("*" if n in required else "") for n in _properties(job_type)]
        row = (job_type.name, job_type.kind, job_type.source, ", ".join(names))
        rows.append((*row, job_type.description or ""))
    return fit_table(TYPE_COLUMNS, rows, caption=counted(len(types), "job types"))


def type_view(job_type: JobTypeInfo) -> RenderableType:
    """One type: what it runs, then a table of its parameters."""
    definition = job_type.definition
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    runs = definition.get("command") or definition.get("python")
    for label, value in (
        ("description", job_type.description),
        ("kind", job_type.kind),
        ("source", job_type.source),
        ("runs", " ".join(runs) if isinstance(runs, list) else runs),
        ("queue", definition.get("queue")),
    ):
        if value:
            grid.add_row(label, str(value))
    header = Panel(grid, title=f"job type {job_type.name}", title_align="left", expand=False)
    return Group(header, params_table(job_type))


def params_table(job_type: JobTypeInfo) -> RenderableType:
    properties = _properties(job_type)
    if not properties:
        return Text("no parameters")
    required = set(job_type.params.get("required", []))
    table = Table(title="parameters", title_justify="left")
    for column in ("name", "type", "default", "required", "constraints", "description"):
        table.add_column(column)
    for name, prop in properties.items():
        table.add_row(
            name,
            _param_type(prop),
            _json(prop["default"]) if "default" in prop else "",
            "yes" if name in required else "no",
            _constraints(prop),
            str(prop.get("description", "")),
        )
    return table


def _properties(job_type: JobTypeInfo) -> dict[str, dict[str, Any]]:
    properties = job_type.params.get("properties", {})
    return properties if isinstance(properties, dict) else {}


def _param_type(prop: dict[str, Any]) -> str:
    kind = prop.get("type", "any")
    return " | ".join(kind) if isinstance(kind, list) else str(kind)


CONSTRAINTS = {
    "format": "format {}",
    "minimum": "≥ {}",
    "exclusiveMinimum": "> {}",
    "maximum": "≤ {}",
    "exclusiveMaximum": "< {}",
    "minLength": "length ≥ {}",
    "maxLength": "length ≤ {}",
    "pattern": "matches {}",
    "enum": "one of {}",
}


def _constraints(prop: dict[str, Any]) -> str:
    found = []
    for key, template in CONSTRAINTS.items():
        if key in prop:
            value = prop[key]
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            found.append(template.format(shown))
    return "; ".join(found)
