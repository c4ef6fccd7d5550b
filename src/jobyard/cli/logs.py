"""``jobyard logs``: a job's output, stored or live."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from jobyard.cli.common import DEFAULT_SERVER, PANEL, JobIdArg, ServerOpt, connect

if TYPE_CHECKING:
    from jobyard.client.sync import Client, LogLine


def logs(
    job_id: JobIdArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")
    ] = False,
    tail: Annotated[
        int | None,
        typer.Option(
            "--tail", "-n", min=0, metavar="N", help="Only the last N lines (with -f: then follow)."
        ),
    ] = None,
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
        printed = False
        for line in _lines(client, job_id, after, tail, follow):
            print_line(job_id, line, json_lines=json_)
            printed = True
        # Read once more after a follow: removed meanwhile, it is not found (exit 3).
        job = client.job(job_id) if follow or not printed else None
        if job is not None and not printed and (pruned := job.logs_pruned_at) is not None:
            # Nothing, and why: retention removed them (an empty log says nothing else).
            typer.echo(
                f"jobyard: job {job_id}'s log lines were pruned at {pruned:%Y-%m-%d %H:%M:%S} UTC",
                err=True,
            )


def _lines(
    client: Client, job_id: int, after: int, tail: int | None, follow: bool
) -> Iterator[LogLine]:
    """The lines to print: all (or the last ``tail``) stored after ``after``, then new ones."""
    if tail is not None:
        # The API pages forward only, and capped logs have gaps in their numbers:
        # read what is stored, keep the last lines, and follow from the last number.
        kept: deque[LogLine] = deque(maxlen=tail)
        for line in client.iter_logs(job_id, after):
            kept.append(line)
            after = line.seq
        yield from kept
        if not follow:
            return
    yield from client.follow_logs(job_id, after) if follow else client.iter_logs(job_id, after)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(logs)
