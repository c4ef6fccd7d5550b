"""What following a big workflow run costs the client: ``follow_run`` and ``run --wait``'s display.

A synthetic run of ``--nodes`` nodes, each made, started and ended by one event
(three events a node), is told to ``calls.follow_run`` by a script (no server, no
network), then to the CLI's display of it: plain lines (stdout not a terminal) and
the bar, both written to /dev/null. Prints the CPU time of each, in all and per
event: where a change costs O(nodes), the time per event grows with ``--nodes``.

    .venv/bin/python bench/bench_follow_run.py --nodes 1000 10000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from jobyard.cli import progress
from jobyard.client import calls
from jobyard.client.events import Event, parse_event
from jobyard.client.flow import Call, Emit, Next

AT = "2026-01-01T00:00:00+00:00"
Synthetic = tuple[dict[str, Any], list[Event], dict[str, Any]]


def synthetic(nodes: int) -> Synthetic:
    """A run as it starts, the events of its nodes (3 a node), and the run as it ended."""
    names = [f"n{i:05d}" for i in range(nodes)]
    start = {"id": 1, "workflow": "wide", "state": "running"}
    start["nodes"] = {name: {"job_id": None, "state": "waiting"} for name in names}
    events = []
    for kind, state in (("job_created", "queued"), ("workflow_node_state", "running")):
        for i, name in enumerate(names):
            data = {"job_id": i + 1, "state": state, "workflow_run": 1, "node": name}
            events.append(parse_event(None, kind, data | {"at": AT}))
    for i, name in enumerate(names):
        data = {"job_id": i + 1, "state": "succeeded", "workflow_run": 1, "node": name}
        events.append(parse_event(None, "workflow_node_state", data | {"at": AT}))
    events.append(parse_event(None, "close", {"run_id": 1, "state": "succeeded"}))
    ended = start | {"state": "succeeded"}
    ended["nodes"] = {name: {"job_id": i + 1, "state": "succeeded"} for i, name in enumerate(names)}
    return start, events, ended


def told(run: Synthetic) -> Iterator[dict[str, Any]]:
    """What ``follow_run`` emits for the synthetic run, its effects answered by a script."""
    start, events, ended = run
    runs, stream = iter([start, ended]), iter(events)
    flow = calls.follow_run(1)
    effect = next(flow)
    with contextlib.suppress(StopIteration):
        while True:
            if isinstance(effect, Emit):
                yield effect.value
                effect = flow.send(None)
            elif isinstance(effect, Call):
                effect = flow.send(next(runs))
            else:
                assert isinstance(effect, Next)
                effect = flow.send(next(stream))


def cpu(what: str, nodes: int, work: Callable[..., None], *args: Any) -> float:
    """The CPU time ``work(*args)`` took, printed in all and per event."""
    began = time.process_time()
    work(*args)
    spent = time.process_time() - began
    print(f"{what:<8} nodes={nodes:<6} events={3 * nodes:<6} cpu={spent:7.3f} s"
          f"  {spent / (3 * nodes) * 1e6:7.1f} µs/event")  # fmt: skip
    return spent


def follow(run: Synthetic) -> None:
    for _ in told(run):
        pass


def show(run: Synthetic, terminal: bool) -> None:
    from rich.console import Console

    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        quiet = Console(file=io.StringIO(), force_terminal=True)
        with (
            mock.patch.object(progress, "on_terminal", return_value=terminal),
            mock.patch("jobyard.cli.render.console", return_value=quiet),
        ):
            progress.wait_run(told(run))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    for nodes in parser.parse_args().nodes:
        run = synthetic(nodes)  # made before the clock starts
        alone = cpu("follow", nodes, follow, run)
        plain = cpu("+plain", nodes, show, run, False)
        bar = cpu("+bar", nodes, show, run, True)
        print(f"display  nodes={nodes:<6} plain={plain - alone:.3f} s  bar={bar - alone:.3f} s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
