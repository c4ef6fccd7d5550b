"""``jobyard logs``: a job's output, stored or live."""

from __future__ import annotations

from typing import Annotated

import typer

from jobyard.cli.common import DEFAULT_SERVER, PANEL, JobIdArg, ServerOpt, connect


def logs(
    job_id: JobIdArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")
    ] = False,
    after: Annotated[int, typer.Option(min=0, help="Start after this line sequence number.")] = 0,
    json_: Annotated[
        bool, typer.Option("--json", help="One JSON object a line: seq, at, stream, line.")
    ] = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Print a job's output: its stdout on stdout, its stderr on stderr.

    The worker's own notes (such as "attempt 2 started") go to stderr too,
    each after the job id in brackets.
    """
    from jobyard.cli.output import print_line

    with connect(server) as client:
        lines = client.follow_logs(job_id, after) if follow else client.iter_logs(job_id, after)
        for line in lines:
            print_line(job_id, line, json_lines=json_)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(logs)
