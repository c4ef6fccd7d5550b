"""``jobyard workers``, ``drain`` and ``forget``: the cluster's workers (or one of them),
draining one, and forgetting a lost one."""

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
    from rich.console import RenderableType
    from rich.table import Table

    from jobyard.client.sync import WorkerStatus

PANEL = "Workers (client commands)"
WORKER_STYLES = {"running": "bold blue", "draining": "yellow", "lost": "bold red"}
workers_app = group("List the workers (the default), or show one (workers NAME).")


@workers_app.command("list")
def workers(json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """List the registered workers: state, host, queues, tags and the jobs they run."""
    with connect(server) as client:
        found = client.workers()
    print_items(found, json_, workers_table)


@workers_app.command("show")
def show_worker(
    name: Annotated[str, name_arg("The worker's name.", complete.workers)],
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Show one worker: state, host, queues, tags, its jobs, heartbeat, drain request."""
    with connect(server) as client:
        worker = client.worker(name)
    print_view(worker, json_, worker_panel)


def drain(
    name: Annotated[
        str,
        typer.Argument(metavar="NAME", help="The worker's name.", autocompletion=complete.workers),
    ],
    timeout: Annotated[
        str | None,
        typer.Option(
            help="How long its jobs may go on before they are handed back, e.g. 60s "
            "(default: the worker's --drain-timeout)."
        ),
    ] = None,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Ask worker NAME to stop claiming, let its jobs finish, then hand back the rest."""
    with connect(server) as client:
        worker = client.drain(name, timeout)
    if json_:
        print_json(worker)
        return
    running = ", ".join(map(str, worker.running)) or "none"
    typer.echo(f"worker {name}: drain requested; it claims nothing more (running: {running})")


def forget(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="The lost worker's name.", autocompletion=complete.workers
        ),
    ],
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Remove lost worker NAME from the list (a live one is refused: drain it instead)."""
    with connect(server) as client:
        client.forget_worker(name)
    typer.echo(f"worker {name} forgotten")


def workers_table(found: Sequence[WorkerStatus]) -> Table:
    """name, state, host, pid, queues, tags, running jobs, last heartbeat, version."""
    from rich.text import Text

    from jobyard.cli.render import short_moment
    from jobyard.cli.tables import Column, fit_table

    columns = (
        Column("name", "key"),
        Column("state", "fixed"),
        Column("host", "key", drop=4),
        Column("pid", "fixed", drop=2, justify="right"),
        Column("queues", "words"),
        Column("tags", "words", drop=5),
        Column("running", "words", drop=6),
        Column("heartbeat", "fixed", drop=3),
        Column("version", "fixed", drop=1),
    )
    rows = [
        (
            worker.name,
            Text(worker.state, style=WORKER_STYLES.get(worker.state, "")),
            worker.host,
            str(worker.pid),
            ", ".join(worker.queues),
            ", ".join(worker.tags),
            f"{len(worker.running)}/{worker.concurrency} {', '.join(map(str, worker.running))}",
            short_moment(worker.heartbeat_at) if worker.heartbeat_at else "",
            worker.version,
        )
        for worker in found
    ]
    return fit_table(columns, rows, caption=counted(len(found), "workers"))


def worker_panel(worker: WorkerStatus) -> RenderableType:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from jobyard.cli.render import NONE, moment
    from jobyard.units import duration

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    running = ", ".join(map(str, worker.running))
    for label, value in (
        ("state", Text(worker.state, style=WORKER_STYLES.get(worker.state, ""))),
        ("host", f"{worker.host}, pid {worker.pid}"),
        ("queues", ", ".join(worker.queues)),
        ("tags", ", ".join(worker.tags) or NONE),
        ("running", f"{len(worker.running)}/{worker.concurrency} {running}".rstrip()),
        ("started", moment(worker.started_at)),
        ("heartbeat", moment(worker.heartbeat_at)),
        ("lease", duration(worker.lease_timeout)),
        ("drain asked", moment(worker.drain_requested_at)),
        ("version", worker.version),
    ):
        grid.add_row(label, value)
    return Panel(grid, title=f"worker {worker.name}", title_align="left", expand=False)


def register(app: typer.Typer) -> None:
    app.add_typer(workers_app, name="workers", rich_help_panel=PANEL)
    app.command(rich_help_panel=PANEL)(drain)
    app.command(rich_help_panel=PANEL)(forget)
