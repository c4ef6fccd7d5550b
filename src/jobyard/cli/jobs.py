"""``jobyard submit``, ``jobs``, ``show`` and the job controls (start … restart, rm)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobyard.cli import complete
from jobyard.cli.common import (
    DEFAULT_SERVER,
    JOB_FAILED,
    NOT_FOUND,
    OK,
    PANEL,
    JobIdArg,
    JsonOpt,
    ListQueueOpt,
    ListTypeOpt,
    ServerOpt,
    connect,
    counted,
    exit_code,
    fail,
    parse_assignments,
    parse_moment,
    print_json,
    print_view,
)

if TYPE_CHECKING:
    from rich.console import RenderableType

    from jobyard.client.sync import ActionResult, Client, JobInfo, JobPage

ArgsArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="KEY=VALUE",
        help="Job arguments. A value is JSON when it parses (n=3, flag=true, "
        'tags=\'["a","b"]\'), else a string (s=abc); a parameter the job type '
        'declares a string keeps its text as typed (s=123 is "123").',
        show_default=False,
        autocompletion=complete.parameters,
    ),
]


def submit(
    type_: Annotated[
        str,
        typer.Argument(
            metavar="TYPE",
            help="Job type (see: jobyard types).",
            autocompletion=complete.job_types,
        ),
    ],
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
    depends_on: Annotated[
        list[str] | None,
        typer.Option(
            "--depends-on",
            metavar="ID[:ON]",
            help="Wait for job ID to end (repeat it for several): it must succeed, or "
            "ID:failed, ID:finished (either way).",
            show_default=False,
        ),
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
    options["depends_on"] = [_dependency(text) for text in depends_on or []]
    with connect(server) as client:
        values = parse_assignments(args or [], _schema(client, type_))
        if follow:
            raise typer.Exit(_follow(client, type_, values, options, json_))
        job, said = _submit(client, type_, values, options)
        if not wait:
            _show_submitted(job, said, json_)
            return
        if not json_:
            typer.echo(f"job {job.id} {said} ({job.type}), waiting for it to end…", err=True)
        raise typer.Exit(_finish(client.wait(job.id), json_))


def _submit(
    client: Client, type_: str, values: dict[str, Any], options: dict[str, Any]
) -> tuple[JobInfo, str]:
    """The job, and ``submitted`` or, for a key seen before, that it is the first job of it."""
    key = options["idempotency_key"]
    if key is None:
        return client.submit(type_, values, **options), "submitted"
    job, new = client.submit_once(type_, values, **options)
    return job, "submitted" if new else f"already submitted with key {key!r}"


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
    from jobyard.cli.progress import follow_job, on_terminal

    events = client.submit_and_follow(type_, values, **options)
    try:
        if on_terminal() and not json_:
            final = follow_job(events)
        else:
            final = print_events(events, json_lines=json_)
    except KeyboardInterrupt:
        typer.echo("jobyard: stopped following; the job keeps running", err=True)
        raise
    if final is None:  # the stream closed with no state: the job was removed
        typer.echo("jobyard: error: the job was removed while it was followed", err=True)
        return NOT_FOUND
    return OK if final == "succeeded" else JOB_FAILED


def _finish(job: JobInfo, json_: bool) -> int:
    from jobyard.cli.output import job_summary

    if json_:
        print_json(job)
    else:
        typer.echo(job_summary(job))
    return JOB_FAILED if job.state != "succeeded" else OK


def _show_submitted(job: JobInfo, said: str, json_: bool) -> None:
    if json_:
        print_json(job)
    else:
        typer.echo(f"job {job.id} {said} ({job.type}): {job.state}")


def _dependency(text: str) -> dict[str, Any]:
    """``7`` → ``{"job": 7}``; ``7:failed`` → ``{"job": 7, "on": "failed"}``."""
    from jobyard.models import Condition

    conditions = [condition.value for condition in Condition]
    job, _, on = text.partition(":")
    if not (job.isascii() and job.isdecimal()) or (on and on not in conditions):
        fail(
            f"--depends-on {text!r}: expected a job id, or ID:ON with ON one of "
            f"{', '.join(conditions)} (e.g. 7 or 7:failed)"
        )
    return {"job": int(job), "on": on} if on else {"job": int(job)}


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--run-at {value!r} is not an ISO 8601 time (e.g. 2026-05-01T06:00:00+02:00)")
    from jobyard.client.values import local_time

    try:  # without an offset: this machine's local time
        return local_time(moment)
    except ValueError as exc:
        fail(f"--run-at {value!r}: {exc}")


StateOpt = Annotated[
    str | None,
    typer.Option(
        "--state",
        help="Only these states, comma separated (queued,running,paused,failed,…).",
        autocompletion=complete.states,
    ),
]


def jobs(
    state: StateOpt = None,
    type_: ListTypeOpt = None,
    queue: ListQueueOpt = None,
    worker: Annotated[
        str | None,
        typer.Option(
            help="Only jobs these workers run, or ran last (none while it waits to run again).",
            autocompletion=complete.workers,
        ),
    ] = None,
    search: Annotated[str | None, typer.Option(help="Free text over type, name, args.")] = None,
    sort: Annotated[
        str | None,
        typer.Option(help="Fields, comma separated; '-' descends (default -created_at)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="WHEN",
            help="Only jobs created since then: a duration back from now (30m, 2h, 1d) "
            "or an ISO time (2026-05-01T06:00, local time without an offset).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(metavar="WHEN", help="Only jobs created before then (as --since)."),
    ] = None,
    page: Annotated[int, typer.Option(min=1, help="Page number.")] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=500, help="Jobs a page.")] = 50,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """List current and past jobs, newest first."""
    start, end = parse_moment(since, "--since"), parse_moment(until, "--until")
    with connect(server) as client:
        found = client.jobs(
            page, per_page, sort, search, state, type_, queue, worker, since=start, until=end
        )
    outside = [
        job.id
        for job in found.items
        if (start and job.created_at < start) or (end and job.created_at >= end)
    ]
    if outside:  # a server older than the filter ignores it: never act on the wrong jobs
        fail(f"the server ignored --since/--until (job {outside[0]} is outside): upgrade it")
    print_view(found, json_, _jobs_page)


def _jobs_page(found: JobPage) -> RenderableType:
    from jobyard.cli.render import jobs_table

    caption = f"page {found.page} of {found.pages} · {counted(found.total, 'jobs')}"
    return jobs_table(found.items, caption=caption)


def show(job_id: JobIdArg, json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Show one job: arguments, state, times, resources (CPU and memory sparklines), links."""
    with connect(server) as client:
        job = client.job(job_id)
        samples = client.samples(job_id)
    if json_:
        print_json({**_plain(job), "samples": samples})
        return
    from jobyard.cli.render import console, job_panel

    console().print(job_panel(job, samples))


def _plain(job: JobInfo) -> dict[str, Any]:
    from jobyard.client.models import plain

    shown: dict[str, Any] = plain(job)
    return shown


IdsArg = Annotated[
    list[int] | None,
    typer.Argument(
        metavar="ID", help="Job ids.", show_default=False, autocompletion=complete.job_ids
    ),
]
SelectState = Annotated[
    str | None,
    typer.Option(
        "--state",
        help="Select the jobs in these states (comma separated).",
        autocompletion=complete.states,
    ),
]
TypeOpt = Annotated[
    str | None,
    typer.Option(
        "--type",
        help="Select the jobs of these types (comma separated).",
        autocompletion=complete.job_types,
    ),
]
QueueOpt = Annotated[
    str | None,
    typer.Option(help="Select the jobs of these queues.", autocompletion=complete.queues),
]
YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Act on several selected jobs without asking.")
]


@dataclass(frozen=True)
class Selection:
    """Jobs named by id, or selected by filters (listed through the API)."""

    ids: list[int]
    state: str | None = None
    type: str | None = None
    queue: str | None = None
    yes: bool = False

    @property
    def filtered(self) -> bool:
        return any((self.state, self.type, self.queue))

    def one(self) -> int | None:
        """The job id when exactly one is named (its own route answers as before)."""
        return self.ids[0] if len(self.ids) == 1 and not self.filtered else None

    def resolve(self, client: Client, verb: str, *, skip_restarted: bool = False) -> list[int]:
        if self.ids and self.filtered:
            fail("give job ids or --state/--type/--queue, not both")
        if self.ids:
            return self.ids
        if not self.filtered:
            fail("give job ids, or select jobs with --state, --type or --queue")
        jobs = client.iter_jobs(sort="id", state=self.state, type=self.type, queue=self.queue)
        ids = [job.id for job in jobs if not (skip_restarted and job.restarted_as)]
        if len(ids) > 1 and not self.yes:
            _confirm(verb, ids)
        return ids


def _confirm(verb: str, ids: list[int]) -> None:
    shown = ", ".join(map(str, ids[:10])) + (", …" if len(ids) > 10 else "")
    if not sys.stdin.isatty():
        fail(f"{len(ids)} jobs match ({shown}); pass --yes to {verb} them all")
    typer.confirm(f"{verb} {len(ids)} jobs ({shown})?", abort=True, err=True)


def _act_on(selection: Selection, action: str, json_: bool, server: str, **how: Any) -> None:
    """Apply ``action`` to the selection: one job through its own route, many at once."""
    with connect(server) as client:
        one = selection.one()
        if one is not None:
            _show_one(action, one, _single(client, action, one, **how), json_)
            return
        ids = selection.resolve(client, action, skip_restarted=action == "restart")
        results = client.act_many(action, ids, **how)
    if not ids:
        typer.echo("jobyard: no job matches", err=True)
    raise typer.Exit(_report(action, results, json_))


def _single(client: Client, action: str, job_id: int, **how: Any) -> JobInfo | None:
    if action == "remove":
        client.remove(job_id, **how)
        return None
    result: JobInfo = getattr(client, action)(job_id)
    return result


def _show_one(action: str, job_id: int, job: JobInfo | None, json_: bool) -> None:
    if json_:
        print_json(job if job is not None else {"id": job_id, "removed": True})
    else:
        typer.echo(_done(action, job_id, job))


def _done(action: str, job_id: int, job: JobInfo | None) -> str:
    """What a command prints about a job it acted on."""
    if job is None:
        return f"job {job_id} removed"
    if action == "restart":
        return f"job {job_id} restarted as job {job.id}: {job.state}"
    if job.control:
        return f"job {job_id}: {action} requested; its worker carries it out ({job.state})"
    return f"job {job_id}: {job.state}"


def _report(action: str, results: list[ActionResult], json_: bool) -> int:
    """One line a job (errors on stderr), then a summary line on stderr; the exit code of
    the first error, else 0."""
    if json_:
        print_json(results)
    else:
        for result in results:
            if result.ok:
                typer.echo(_done(action, result.id, result.job))
            else:
                typer.echo(f"jobyard: error: job {result.id}: {result.message}", err=True)
        if len(results) > 1:
            typer.echo(summary(action, results), err=True)
    failed = [result.status for result in results if not result.ok]
    return exit_code(failed[0]) if failed else OK


def summary(action: str, results: list[ActionResult]) -> str:
    """``kill: 3 jobs: 2 done (1 killed, 1 requested), 1 refused``."""
    from collections import Counter

    done = [result for result in results if result.ok]
    outcomes = Counter(_outcome(action, result) for result in done)
    details = ", ".join(f"{count} {name}" for name, count in outcomes.items())
    text = f"{action}: {counted(len(results), 'jobs')}: {len(done)} done"
    text += f" ({details})" if details else ""
    refused = len(results) - len(done)
    return text + (f", {refused} refused" if refused else "")


def _outcome(action: str, result: ActionResult) -> str:
    if result.job is None:
        return "removed"
    if action == "restart":
        return "restarted"
    return "requested" if result.job.control else result.job.state


def _control(action: str, summary: str) -> Callable[..., None]:
    def command(
        job_ids: IdsArg = None,
        state: SelectState = None,
        type_: TypeOpt = None,
        queue: QueueOpt = None,
        yes: YesOpt = False,
        json_: JsonOpt = False,
        server: ServerOpt = DEFAULT_SERVER,
    ) -> None:
        selection = Selection(job_ids or [], state, type_, queue, yes)
        _act_on(selection, action, json_, server)

    command.__doc__ = (
        f"{summary}\n\nSeveral ids, or jobs selected by --state/--type/--queue, are "
        "handled each on its own; exit code 4 when a job's state forbids it."
    )
    command.__name__ = action
    return command


def restart(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="ID|KEY=VALUE",
            help="Job ids; with one id, KEY=VALUE overrides some of its arguments.",
            show_default=False,
        ),
    ] = None,
    state: SelectState = None,
    type_: TypeOpt = None,
    queue: QueueOpt = None,
    yes: YesOpt = False,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Run ended jobs again as new jobs (`restart --state failed` retries the failures).

    Jobs selected by filters leave out those restarted already.
    """
    ids, assignments = _split_targets(targets or [])
    selection = Selection(ids, state, type_, queue, yes)
    if not assignments:
        _act_on(selection, "restart", json_, server)
        return
    if selection.one() is None:
        fail("KEY=VALUE overrides go with exactly one job id")
    with connect(server) as client:
        overrides = parse_assignments(assignments, _schema(client, client.job(ids[0]).type))
        job = client.restart(ids[0], overrides)
    _show_one("restart", ids[0], job, json_)


def _split_targets(targets: list[str]) -> tuple[list[int], list[str]]:
    """Job ids and KEY=VALUE assignments, each given as a word."""
    ids = [int(word) for word in targets if word.isdigit()]
    assignments = [word for word in targets if "=" in word]
    strangers = [word for word in targets if not word.isdigit() and "=" not in word]
    if strangers:
        fail(f"bad argument {strangers[0]!r}: expected a job id or KEY=VALUE")
    return ids, assignments


def rm(
    job_ids: IdsArg = None,
    force: Annotated[bool, typer.Option("--force", help="Remove live jobs too.")] = False,
    state: SelectState = None,
    type_: TypeOpt = None,
    queue: QueueOpt = None,
    yes: YesOpt = False,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Remove ended jobs and their history (a live one needs --force)."""
    selection = Selection(job_ids or [], state, type_, queue, yes)
    _act_on(selection, "remove", json_, server, force=force)


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
