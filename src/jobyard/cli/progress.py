"""Progress bars for ``submit --follow`` and ``run --wait`` on a terminal; plain lines elsewhere.

On a terminal the bar stays at the bottom while the job's output scrolls
above it (Rich's live display takes over stdout and stderr meanwhile). When
stdout is a pipe or a file, nothing is drawn: the same events are plain lines,
so that scripts and logs read them as before.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from jobyard.cli.output import note, print_line, state_summary
from jobyard.client.models import TERMINAL_STATES, Event, LogLine

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


def on_terminal() -> bool:
    return sys.stdout.isatty()


@contextmanager
def _bar(description: str, total: float | None) -> Iterator[tuple[Progress, TaskID]]:
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from jobyard.cli.render import console

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),  # a job's words, brackets and all
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console(), transient=True) as bar:
        yield bar, bar.add_task(description, total=total)


def follow_job(events: Iterable[Event]) -> str | None:
    """Show a job's events under a bar (its progress, else a pulse); returns the final state."""
    final: str | None = None
    job_id = 0
    with _bar("submitting", None) as (bar, task):
        for event in events:
            job_id = event.job_id or job_id
            data = event.data
            if event.kind == "log":
                print_line(job_id, LogLine.from_dict(data))
            elif event.kind == "state":
                bar.update(task, description=f"job {job_id}: {state_summary(data)}")
            elif event.kind == "progress" and isinstance(data.get("fraction"), int | float):
                message = data.get("message") or ""
                bar.update(task, total=1.0, completed=data["fraction"])
                if message:
                    bar.update(task, description=f"job {job_id}: {message}")
            elif event.kind == "close":
                final = str(data.get("state"))
    note(job_id, str(final))
    return final


def wait_run(runs: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """Show a workflow run as ``runs`` tells its changes (``Client.follow_run``): a bar of
    its nodes on a terminal, else a line each time a node changes state. Returns the run
    as it was last told, once it is no longer running."""
    first = next(runs)
    told = itertools.chain([first], runs)
    if not on_terminal():
        return _wait_plain(told)
    last = first
    with _bar(_run_title(first), max(len(first.get("nodes", {})), 1)) as (bar, task):
        for last in told:
            bar.update(task, description=_run_title(last), completed=_ended(last))
    return last


def _wait_plain(told: Iterable[dict[str, Any]]) -> dict[str, Any]:
    seen: dict[str, str] = {}
    last: dict[str, Any] = {}
    for last in told:
        for name, node in last.get("nodes", {}).items():
            if seen.get(name) != node["state"]:
                seen[name] = node["state"]
                _write_err(f"[run {last['id']}] {name}: {node['state']}")
    return last


def _run_title(run: dict[str, Any]) -> str:
    nodes = run.get("nodes", {})
    return f"run {run['id']} of {run['workflow']}: {_ended(run)}/{len(nodes)} nodes done"


def _ended(run: dict[str, Any]) -> int:
    return sum(1 for node in run.get("nodes", {}).values() if node["state"] in TERMINAL_STATES)


def _write_err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
