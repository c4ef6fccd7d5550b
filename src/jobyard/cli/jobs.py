"""``jobyard submit``, ``jobs``, ``show`` and the job controls (start … restart, rm)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobyard.cli.common import (
    DEFAULT_SERVER,
    JOB_FAILED,
    OK,
    PANEL,
    JobIdArg,
    JsonOpt,
    ServerOpt,
    connect,
    fail,
    parse_assignments,
    print_json,
)

if TYPE_CHECKING:
    from jobyard.client.sync import Client, JobInfo

ArgsArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="KEY=VALUE",
        help="Job arguments. A value is JSON when it parses (n=3, flag=true, "
        'tags=\'["a","b"]\'), else a string (s=abc); a parameter the job type '
        'declares a string keeps its text as typed (s=123 is "123").',
        show_default=False,
    ),
]


def submit(
    type_: Annotated[str, typer.Argument(metavar="TYPE", help="Job type (see: jobyard types).")],
    args: ArgsArg = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Stream its output and state changes until it ends."),
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Wait until it ends; exit 1 unless it succeeded.")
    ] = False,
    hold: Annotated[
        bool, typer.Option("--hold", help="Create it held; `jobyard start ID` releases it.")
    ] = False,
    priority: Annotated[int | None, typer.Option(help="Higher runs first (default 0).")] = None,
    queue: Annotated[str | None, typer.Option(help="Queue (default: the type's).")] = None,
    name: Annotated[str | None, typer.Option(help="A name to find it by.")] = None,
    run_at: Annotated[
        str | None,
        typer.Option(
            "--run-at",
            metavar="ISO",
            help="Not before this time, e.g. 2026-05-01T06:00 (local time without an offset).",
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="A repeat with the same key returns the first job."),
    ] = None,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Submit a job of TYPE with KEY=VALUE arguments.

    With --follow or --wait the exit code tells how it ended: 0 succeeded,
    1 failed, killed or upstream_failed.
    """
    if hold and (follow or wait):
        fail("--hold cannot go with --follow or --wait (a held job waits for `jobyard start`)")
    options: dict[str, Any] = {"priority": priority, "queue": queue, "run_at": _when(run_at)}
    options |= {"hold": hold, "name": name, "idempotency_key": idempotency_key}
    with connect(server) as client:
        values = parse_assignments(args or [], _schema(client, type_))
        if follow:
            raise typer.Exit(_follow(client, type_, values, options, json_))
        job = client.submit(type_, values, **options)
        if not wait:
            _show_submitted(job, json_)
            return
        if not json_:
            typer.echo(f"job {job.id} submitted ({job.type}), waiting for it to end…", err=True)
        raise typer.Exit(_finish(client.wait(job.id), json_))


def _schema(client: Client, type_: str) -> dict[str, Any] | None:
    """The type's JSON Schema, to read string parameters as they are typed."""
    from jobyard.client.sync import NotFound

    try:
        return client.job_type(type_).params
    except NotFound:  # the submission says so, naming the field
        return None


def _follow(
    client: Client, type_: str, values: dict[str, Any], options: dict[str, Any], json_: bool
) -> int:
    from jobyard.cli.output import print_events

    events = client.submit_and_follow(type_, values, **options)
    try:
        final = print_events(events, json_lines=json_)
    except KeyboardInterrupt:
        typer.echo("jobyard: stopped following; the job keeps running", err=True)
        raise
    return OK if final == "succeeded" else JOB_FAILED


def _finish(job: JobInfo, json_: bool) -> int:
    from jobyard.cli.output import job_summary

    if json_:
        print_json(job)
    else:
        typer.echo(job_summary(job))
    return JOB_FAILED if job.state != "succeeded" else OK


def _show_submitted(job: JobInfo, json_: bool) -> None:
    if json_:
        print_json(job)
    else:
        typer.echo(f"job {job.id} submitted ({job.type}): {job.state}")


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        fail(f"--run-at {value!r} is not an ISO 8601 time (e.g. 2026-05-01T06:00:00+02:00)")


StateOpt = Annotated[
    str | None,
    typer.Option(
        "--state", help="Only these states, comma separated (queued,running,paused,failed,…)."
    ),
]


def jobs(
    state: StateOpt = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only these types.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only these queues.")] = None,
    search: Annotated[str | None, typer.Option(help="Free text over type, name, args.")] = None,
    sort: Annotated[
        str | None,
        typer.Option(help="Fields, comma separated; '-' descends (default -created_at)."),
    ] = None,
    page: Annotated[int, typer.Option(min=1, help="Page number.")] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=500, help="Jobs a page.")] = 50,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """List current and past jobs, newest first."""
    with connect(server) as client:
        found = client.jobs(page, per_page, sort, search, state, type_, queue)
    if json_:
        print_json(found)
        return
    from jobyard.cli.render import console, jobs_table

    caption = f"page {found.page} of {found.pages} · {found.total} jobs"
    console().print(jobs_table(found.items, caption=caption))


def show(job_id: JobIdArg, json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Show one job: arguments, state, times, resources, error, restart links."""
    with connect(server) as client:
        job = client.job(job_id)
    if json_:
        print_json(job)
        return
    from jobyard.cli.render import console, job_panel

    console().print(job_panel(job))


def _control(action: str, summary: str) -> Callable[..., None]:
    def command(
        job_id: JobIdArg, json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER
    ) -> None:
        with connect(server) as client:
            job = getattr(client, action)(job_id)
        if json_:
            print_json(job)
        elif job.control:
            typer.echo(f"job {job_id}: {action} requested; its worker carries it out ({job.state})")
        else:
            typer.echo(f"job {job_id}: {job.state}")

    command.__doc__ = f"{summary}\n\nExit code 4 when the job's state forbids it."
    command.__name__ = action
    return command


def restart(
    job_id: JobIdArg,
    args: ArgsArg = None,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Run an ended job again as a new job (KEY=VALUE overrides some arguments)."""
    with connect(server) as client:
        schema = _schema(client, client.job(job_id).type) if args else None
        overrides = parse_assignments(args, schema) if args else None
        job = client.restart(job_id, overrides)
    if json_:
        print_json(job)
    else:
        typer.echo(f"job {job_id} restarted as job {job.id}: {job.state}")


def rm(
    job_id: JobIdArg,
    force: Annotated[bool, typer.Option("--force", help="Kill a live job first.")] = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Remove an ended job and its history (a live one needs --force)."""
    with connect(server) as client:
        client.remove(job_id, force=force)
    typer.echo(f"job {job_id} removed")


def register(app: typer.Typer) -> None:
    def add(function: Callable[..., None], name: str | None = None) -> None:
        app.command(name, rich_help_panel=PANEL)(function)

    add(submit)
    add(jobs)
    add(show)
    for action, summary in (
        ("start", "Release a held job."),
        ("pause", "Pause a running job (SIGSTOP), or hold one that has not started."),
        ("resume", "Resume a paused job (SIGCONT), or release a held one."),
        ("kill", "Kill a job: SIGTERM, then SIGKILL after its grace period."),
    ):
        add(_control(action, summary), action)
    add(restart)
    add(rm)
