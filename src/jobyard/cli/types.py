"""``jobyard types``: the job types a server knows, and their parameters."""

from __future__ import annotations

from typing import Annotated

import typer

from jobyard.cli.common import DEFAULT_SERVER, PANEL, JsonOpt, ServerOpt, connect, print_json


def types(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME", help="A type to show with its parameters.", show_default=False
        ),
    ] = None,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """List the job types, or show one with its parameters (type, default, required…)."""
    from jobyard.cli.render import console, type_view, types_table

    with connect(server) as client:
        if name is None:
            found = client.job_types()
            if json_:
                print_json({"items": found, "total": len(found)})
            else:
                console().print(types_table(found))
            return
        job_type = client.job_type(name)
    if json_:
        print_json(job_type)
    else:
        console().print(type_view(job_type))


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(types)
