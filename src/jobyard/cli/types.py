"""``jobyard types``: the job types a server knows; add, edit and remove stored ones."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from jobyard.cli import complete
from jobyard.cli.common import (
    DEFAULT_SERVER,
    PANEL,
    JsonOpt,
    ServerOpt,
    connect,
    name_arg,
    print_items,
    print_json,
    print_view,
)
from jobyard.cli.groups import group

if TYPE_CHECKING:
    from jobyard.cli.definitions import Definition
    from jobyard.client.sync import JobTypeInfo

types_app = group(
    "List the job types (the default), show one (`jobyard types NAME`), "
    "add or edit them from a YAML file, remove one."
)
NameArg = Annotated[str, name_arg("A job type.", complete.job_types)]
FileArg = Annotated[
    Path,
    typer.Argument(
        metavar="FILE",
        help="YAML: job types as in jobyard.yaml (under job_types:, or name: definition at the "
        "top), or one definition with its name.",
        show_default=False,
    ),
]


@types_app.command("list")
def list_types(json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """List the job types: name, kind, source, parameters (* required), description."""
    from jobyard.cli.render import types_table

    with connect(server) as client:
        found = client.job_types()
    print_items(found, json_, types_table)


@types_app.command("show")
def show_type(name: NameArg, json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Show one type with its parameters (type, default, required, constraints…)."""
    from jobyard.cli.render import type_view

    with connect(server) as client:
        job_type = client.job_type(name)
    print_view(job_type, json_, type_view)


@types_app.command("add")
def add_types(file: FileArg, json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Store the new job types of FILE in the server's database (exit 4 if a name exists)."""
    _store(file, "added", json_, server, replace=False)


@types_app.command("edit")
def edit_types(file: FileArg, json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Replace stored job types with the definitions of FILE (creating the missing ones).

    Jobs already submitted keep the definition they were submitted with.
    """
    _store(file, "saved", json_, server, replace=True)


def _store(file: Path, verb: str, json_: bool, server: str, *, replace: bool) -> None:
    from jobyard.cli.definitions import apply, load

    definitions = load(file, "job_types")
    with connect(server) as client:

        def send(definition: Definition) -> JobTypeInfo:
            if replace:
                return client.put_job_type(definition.name, definition.body)
            return client.create_job_type({"name": definition.name, **definition.body})

        stored = apply(str(file), definitions, send, verb)
    if json_:
        print_json({"items": stored, "total": len(stored)})
        return
    for job_type in stored:
        typer.echo(f"job type {job_type.name} {verb} ({job_type.kind})")


@types_app.command("rm")
def remove_type(name: NameArg, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Remove a job type stored in the database (one of the configuration file: exit 4)."""
    with connect(server) as client:
        client.delete_job_type(name)
    typer.echo(f"job type {name} removed")


def register(app: typer.Typer) -> None:
    app.add_typer(types_app, name="types", rich_help_panel=PANEL)
