"""``jobyard health``: whether the server answers, and whether each part of it works."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import typer

from jobyard.cli.common import (
    DEFAULT_SERVER,
    JOB_FAILED,
    JsonOpt,
    ServerOpt,
    connect,
    counted,
    fail,
    print_json,
)

PANEL = "Server (client commands)"


def health(json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Ask the server's /healthz and /readyz: ok (exit 0) or degraded (exit 1, saying
    why: a part of it stopped, or it is not ready, its database not answering).

    A server that cannot be reached exits 5.
    """
    with connect(server) as client:
        found = client.health()
        ready = client.ready()
    if ready.get("status") != "ready":
        reason = f"not ready: {ready.get('detail')}"  # its database away, or at its limits
        found = {**found, "status": "degraded", "reasons": [*found.get("reasons", []), reason]}
    if json_:
        print_json(found)
    else:
        typer.echo(summary(found))
    if found.get("status") != "ok":
        reasons = "; ".join(found.get("reasons") or []) or "it gives no reason"
        fail(f"the server is {found.get('status')}: {reasons}", JOB_FAILED)


def summary(found: Mapping[str, Any]) -> str:
    """``ok: jobyard 1.2.0 on sqlite; worker w-1; scheduler (leader); 2 event streams open``."""
    worker = f"worker {found['worker']}" if found.get("worker") else "no worker"
    scheduler = "no scheduler"
    if found.get("scheduler"):
        scheduler = f"scheduler ({'leader' if found.get('scheduler_leader') else 'standby'})"
    streams = counted(found.get("stream_subscribers") or 0, "event streams")
    head = f"{found['status']}: jobyard {found['version']} on {found['database']}"
    return f"{head}; {worker}; {scheduler}; {streams} open"


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(health)
