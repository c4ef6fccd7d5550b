"""``jobyard queues``: what waits and runs in each queue; pause and resume dispatch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from jobyard.cli import complete
from jobyard.cli.common import (
    DEFAULT_SERVER,
    JsonOpt,
    ServerOpt,
    connect,
    counted,
    name_arg,
    print_items,
    print_json,
    print_view,
)
from jobyard.cli.groups import group

if TYPE_CHECKING:
    from rich.table import Table

    from jobyard.client.sync import QueueInfo

PANEL = "Queues and schedules (client commands)"
COUNTED = ("queued", "running", "paused", "held", "scheduled", "waiting")
queues_app = group("List the queues (the default), show one, pause or resume one.")
NameArg = Annotated[str, name_arg("A queue.", complete.queues)]


@queues_app.command("list")
def list_queues(json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """List the queues: paused or not, limit of running jobs, jobs in each live state."""
    with connect(server) as client:
        found = client.queues()
    print_items(found, json_, queues_table)


@queues_app.command("show")
def show_queue(name: NameArg, json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Show one queue with its job counts by state."""
    from jobyard.cli.common import NOT_FOUND, fail

    with connect(server) as client:
        found = [queue for queue in client.queues() if queue.name == name]
    if not found:
        fail(f"no queue named {name!r}", NOT_FOUND)
    print_view(found[0], json_, lambda queue: queues_table([queue]))


def _control(action: str, doc: str) -> None:
    def command(name: NameArg, json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
        with connect(server) as client:
            queue = getattr(client, f"{action}_queue")(name)
        if json_:
            print_json(queue)
        else:
            typer.echo(f"queue {queue.name}: {'paused' if queue.paused else 'open'}")

    command.__doc__ = doc
    queues_app.command(action)(command)


_control("pause", "Stop starting the queue's jobs; running jobs go on.")
_control("resume", "Start the queue's jobs again.")


def queues_table(found: Sequence[QueueInfo]) -> Table:
    """name, state, limit, and how many jobs are in each live state."""
    from rich.text import Text

    from jobyard.cli.tables import Column, fit_table

    columns = (
        Column("name", "key"),
        Column("state", "fixed"),
        Column("limit", "fixed", justify="right"),
        Column("jobs", "words"),
    )
    rows = []
    for queue in found:
        state = Text("paused", style="magenta") if queue.paused else Text("open", style="green")
        limit = "" if queue.max_running is None else str(queue.max_running)
        counts = [f"{queue.jobs[name]} {name}" for name in COUNTED if queue.jobs.get(name)]
        rows.append((queue.name, state, limit, ", ".join(counts) or "none"))
    return fit_table(columns, rows, caption=counted(len(found), "queues"))


def register(app: typer.Typer) -> None:
    app.add_typer(queues_app, name="queues", rich_help_panel=PANEL)
