"""Progress bars for ``submit --follow`` and ``run --wait`` on a terminal; plain lines elsewhere.

On a terminal the bar stays at the bottom while the job's output scrolls
above it (Rich's live display takes over stdout and stderr meanwhile). When
stdout is a pipe or a file, nothing is drawn: the same events are plain lines,
so that scripts and logs read them as before.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from jobyard.cli.output import closed_state, note, print_line, state_summary
from jobyard.client.models import TERMINAL_STATES, Event, LogLine
from jobyard.client.nodes import RunNodes

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
    """Show a job's events under a bar (its progress, else a pulse); returns the final state
    (None: the job was removed)."""
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
                final = closed_state(data)
    note(job_id, str(final))
    return final


def wait_run(runs: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """Show a workflow run as ``runs`` tells its changes (``Client.follow_run``): a bar of
    its nodes on a terminal, else a line each time a node changes state. Returns the run
    as it was last told, once it is no longer running."""
    first = next(runs)
    told = itertools.chain([first], runs)
    tally = _Tally()
    if not on_terminal():
        return _wait_plain(told, tally)
    tally.tell(first)
    last = first
    with _bar(tally.title(first), max(len(first.get("nodes", {})), 1)) as (bar, task):
        for last in told:
            tally.tell(last)
            bar.update(task, description=tally.title(last), completed=tally.ended)
    return last


def _wait_plain(told: Iterable[dict[str, Any]], tally: _Tally) -> dict[str, Any]:
    last: dict[str, Any] = {}
    for last in told:
        for name, state in tally.tell(last):
            _write_err(f"[run {last['id']}] {name}: {state}")
    return last


class _Tally:
    """Each node's state as the run was last told, and how many have ended: kept up to
    date with what changed, so that a change costs the same however many nodes the run
    has (the nodes ``follow_run`` tells between the first run and the last say which
    changed; a run read anew is compared node by node)."""

    def __init__(self) -> None:
        self._states: dict[str, str] = {}
        self.ended = 0
        self._nodes: Mapping[str, Any] = {}

    def tell(self, run: dict[str, Any]) -> list[tuple[str, str]]:
        """The nodes whose state changed since the run was last told, with their state."""
        nodes: Mapping[str, Any] = run.get("nodes", {})
        if nodes is self._nodes:
            return []
        names = nodes.changed_since(self._nodes) if isinstance(nodes, RunNodes) else None
        self._nodes = nodes
        moved: list[tuple[str, str]] = []
        for name in nodes if names is None else names:
            state, before = nodes[name]["state"], self._states.get(name)
            if state != before:
                self.ended += (state in TERMINAL_STATES) - (before in TERMINAL_STATES)
                self._states[name] = state
                moved.append((name, state))
        return moved

    def title(self, run: dict[str, Any]) -> str:
        nodes = run.get("nodes", {})
        return f"run {run['id']} of {run['workflow']}: {self.ended}/{len(nodes)} nodes done"


def _write_err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
