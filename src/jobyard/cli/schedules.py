"""``jobyard schedules``: what fires when; add (from flags or a YAML file), pause, resume, rm."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobyard.cli import complete
from jobyard.cli.common import (
    DEFAULT_SERVER,
    JsonOpt,
    ServerOpt,
    connect,
    counted,
    fail,
    name_arg,
    parse_assignments,
    print_items,
    print_json,
    print_view,
)
from jobyard.cli.groups import group
from jobyard.cli.queues import PANEL

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from jobyard.cli.definitions import Definition
    from jobyard.client.sync import ScheduleInfo

schedules_app = group(
    "List the schedules (the default), show one, add them from flags or a YAML file, "
    "pause, resume or remove one."
)
NameArg = Annotated[str, name_arg("A schedule.", complete.schedules)]


@schedules_app.command("list")
def list_schedules(json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """List the schedules: what each starts, when, and when it fires next."""
    with connect(server) as client:
        found = client.schedules()
    print_items(found, json_, schedules_table)


@schedules_app.command("show")
def show_schedule(
    name: NameArg, json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER
) -> None:
    """Show one schedule: target, arguments, trigger, time zone, overlap, fire times."""
    with connect(server) as client:
        schedule = client.schedule(name)
    print_view(schedule, json_, schedule_panel)


@schedules_app.command("add")
def add_schedule(
    name: Annotated[
        str | None,
        typer.Argument(metavar="NAME", help="The new schedule's name.", show_default=False),
    ] = None,
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE", help="Arguments of each job or run.", show_default=False
        ),
    ] = None,
    type_: Annotated[
        str | None,
        typer.Option(
            "--type", help="Submit a job of this type…", autocompletion=complete.job_types
        ),
    ] = None,
    workflow: Annotated[str | None, typer.Option(help="…or start a run of this workflow.")] = None,
    cron: Annotated[str | None, typer.Option(help='A cron expression, e.g. "0 2 * * *"…')] = None,
    every: Annotated[str | None, typer.Option(help="…or an interval, e.g. 15m…")] = None,
    at: Annotated[
        str | None,
        typer.Option(help="…or one moment (ISO 8601; without an offset, in --timezone or local)."),
    ] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA name (default UTC).")] = None,
    overlap: Annotated[str | None, typer.Option(help="skip (default), queue or allow.")] = None,
    misfire: Annotated[str | None, typer.Option(help="run_once (default) or skip.")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Add it paused.")] = False,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="YAML: schedules as in jobyard.yaml (under schedules:, or name: definition).",
        ),
    ] = None,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Add a schedule from flags (NAME --type T --every 15m KEY=VALUE…), or all of a --file."""
    from jobyard.cli.definitions import Definition, apply, load

    if file is not None:
        if name or args or any((type_, workflow, cron, every, at, timezone, overlap, misfire)):
            fail("--file goes alone: the file holds the whole definition")
        definitions = load(file, "schedules")
    elif name is None:
        fail("give the schedule's NAME with its flags, or --file FILE")
    else:
        try:
            at = local_at(at) if timezone is None else at
        except ValueError as exc:
            fail(f"schedule {name}: {exc}")
        flags = {"job_type": type_, "workflow": workflow, "cron": cron, "every": every, "at": at}
        flags |= {"timezone": timezone, "overlap": overlap, "misfire": misfire}
        body: dict[str, Any] = {key: value for key, value in flags.items() if value is not None}
        body["args"] = parse_assignments(args or [])
        body |= {"paused": True} if paused else {}
        definitions = [Definition(name, body, "")]
    with connect(server) as client:

        def send(definition: Definition) -> ScheduleInfo:
            return client.create_schedule({"name": definition.name, **definition.body})

        source = str(file) if file is not None else f"schedule {name}"
        added = apply(source, definitions, send, "added")
    if json_:
        print_json({"items": added, "total": len(added)})
        return
    for schedule in added:
        typer.echo(f"schedule {schedule.name} added: {schedule.description}{_next(schedule)}")


def local_at(value: str | None, local: tzinfo | None = None) -> str | None:
    """``--at`` without an offset (and without ``--timezone``) is local time, as
    ``submit --run-at`` is: give it the offset of ``local`` (None: this machine's).
    :class:`ValueError` for a time that clock skips, or out of range."""
    from datetime import datetime

    from jobyard.client.values import local_time

    try:
        moment = datetime.fromisoformat(value or "")
    except ValueError:
        return value  # the server names the problem
    if moment.tzinfo is not None:
        return value
    try:
        return local_time(moment, local).isoformat()
    except ValueError as exc:
        raise ValueError(f"at: {exc}") from None


def _control(action: str, doc: str) -> None:
    def command(name: NameArg, json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
        with connect(server) as client:
            schedule = getattr(client, f"{action}_schedule")(name)
        if json_:
            print_json(schedule)
        else:
            state = "paused" if schedule.paused else "active"
            typer.echo(f"schedule {schedule.name}: {state}{_next(schedule)}")

    command.__doc__ = doc
    schedules_app.command(action)(command)


_control("pause", "Fire nothing until resumed (the times that pass meanwhile are skipped).")
_control("resume", "Fire again from the next time on.")


@schedules_app.command("rm")
def remove_schedule(name: NameArg, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Remove a stored schedule (one of the configuration file: exit 4)."""
    with connect(server) as client:
        client.delete_schedule(name)
    typer.echo(f"schedule {name} removed")


def _next(schedule: ScheduleInfo) -> str:
    from jobyard.cli.render import moment

    return f"; next {moment(schedule.next_fire)}" if schedule.next_fire else ""


def _target(schedule: ScheduleInfo) -> str:
    kind, name = next(iter(schedule.target.items()), ("", ""))
    return f"run {name}" if kind == "workflow" else name


def _state(schedule: ScheduleInfo) -> str:
    """``paused (by the file)``, ``active (resumed through the API)``…"""
    state = "paused" if schedule.paused else "active"
    if schedule.source != "config" or schedule.paused_by is None:
        return state
    if schedule.paused_by == "file":
        return f"{state} (by the file)"
    done = "paused" if schedule.paused else "resumed"
    return f"{state} ({done} through the API, until the file's paused: changes)"


def schedules_table(found: Sequence[ScheduleInfo]) -> Table:
    """name, target (a job type, or ``run W`` for a workflow), trigger, next fire, last fire."""
    from jobyard.cli.render import NONE, short_moment
    from jobyard.cli.tables import Column, fit_table

    columns = (
        Column("name", "key"),
        Column("starts", "key"),
        Column("when", "text", drop=3),
        Column("next", "fixed", drop=2),
        Column("last", "fixed", drop=1),
    )
    rows = []
    for schedule in found:
        upcoming = short_moment(schedule.next_fire) if schedule.next_fire else NONE
        last = short_moment(schedule.last_fire) if schedule.last_fire else NONE
        when = schedule.description + (" (paused)" if schedule.paused else "")
        rows.append((schedule.name, _target(schedule), when, upcoming, last))
    return fit_table(columns, rows, caption=counted(len(found), "schedules"))


def schedule_panel(schedule: ScheduleInfo) -> RenderableType:
    import json

    from rich.panel import Panel
    from rich.table import Table

    from jobyard.cli.render import moment

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    kind, target = next(iter(schedule.target.items()), ("", ""))
    for label, value in (
        (kind.replace("_", " "), target),
        ("args", json.dumps(schedule.args, ensure_ascii=False)),
        ("when", schedule.description),
        ("timezone", schedule.timezone),
        ("overlap", schedule.overlap),
        ("misfire", schedule.misfire),
        ("state", _state(schedule)),
        ("next fire", moment(schedule.next_fire)),
        ("last fire", moment(schedule.last_fire)),
        ("source", schedule.source),
    ):
        grid.add_row(label, value)
    return Panel(grid, title=f"schedule {schedule.name}", title_align="left", expand=False)


def register(app: typer.Typer) -> None:
    app.add_typer(schedules_app, name="schedules", rich_help_panel=PANEL)
