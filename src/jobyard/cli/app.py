"""The ``jobyard`` command line.

The top level imports only Typer (and the client commands, which import only
Typer too): server, database, HTTP and Rich code is imported inside the
commands that need it, so ``jobyard --help`` starts fast.
"""

from __future__ import annotations

import gc
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobyard.cli import access as cli_access
from jobyard.cli import allocator, credentials
from jobyard.cli import health as cli_health
from jobyard.cli import jobs as cli_jobs
from jobyard.cli import logs as cli_logs
from jobyard.cli import maintenance as cli_maintenance
from jobyard.cli import notify as cli_notify
from jobyard.cli import queues as cli_queues
from jobyard.cli import schedules as cli_schedules
from jobyard.cli import session as cli_session
from jobyard.cli import types as cli_types
from jobyard.cli import users as cli_users
from jobyard.cli import watch as cli_watch
from jobyard.cli import workers as cli_workers
from jobyard.cli import workflows as cli_workflows
from jobyard.cli.common import fail
from jobyard.cli.settings import (
    ConfigOpt,
    DatabaseOpt,
    check_database,
    load_settings,
    open_database,
    read_settings,
)

if TYPE_CHECKING:
    from jobyard.config import Config
    from jobyard.node import Node
    from jobyard.settings import Settings

app = typer.Typer(
    help="jobyard: submit, watch and control batch jobs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

ConcurrencyOpt = Annotated[
    int | None,
    typer.Option("--concurrency", envvar="JOBYARD_CONCURRENCY", min=1, help="jobs at once"),
]
QueuesOpt = Annotated[
    str | None,
    typer.Option("--queues", envvar="JOBYARD_QUEUES", help="comma separated; default: all"),
]
NameOpt = Annotated[
    str | None, typer.Option("--name", envvar="JOBYARD_WORKER_NAME", help="worker name")
]
TagsOpt = Annotated[
    str | None,
    typer.Option(
        "--tags",
        envvar="JOBYARD_TAGS",
        help="comma separated (at most 8); it runs jobs whose types require only these",
    ),
]
DrainTimeoutOpt = Annotated[
    str | None,
    typer.Option(
        "--drain-timeout",
        envvar="JOBYARD_DRAIN_TIMEOUT",
        help="on SIGTERM/SIGINT or a drain request, how long running jobs may go on "
        "before they are handed back (e.g. 60s; default 5s)",
    ),
]
LogLevelOpt = Annotated[str, typer.Option("--log-level", envvar="JOBYARD_LOG_LEVEL")]
LogFormatOpt = Annotated[
    str, typer.Option("--log-format", envvar="JOBYARD_LOG_FORMAT", help="text or json")
]


def _load_node_settings(
    config: Path | None,
    database_url: str | None,
    concurrency: int | None,
    queues: str | None,
    name: str | None,
    log_level: str,
    log_format: str,
    *,
    tags: str | None = None,
    drain_timeout: str | None = None,
    sends: bool = True,
    **server: Any,
) -> tuple[Settings, Config]:
    """Settings of a serving or working process from its flags, and its logging set up.

    Only a process that ``sends`` notifications (a server) needs their secrets, and
    the first admin's password.
    """
    from jobyard import logs, tracing

    settings, cfg = load_settings(
        {
            **server,
            "config": config,
            "database_url": database_url,
            "concurrency": concurrency,
            "queues": queues,  # split and checked by the settings, as the variable is
            "tags": _split(tags),
            "drain_timeout": drain_timeout,
            "worker_name": name,
            "log_level": log_level,
            "log_format": log_format,
        },
        check_secrets=sends,
        admin=sends,
    )
    if problem := settings.lease_problem():
        fail(problem)
    logs.setup(settings.log_level, settings.log_format)
    tracing.setup()  # only with OTEL_TRACES_EXPORTER set: see docs/monitoring.md
    _warn_of_undeclared_queues(settings.queues, cfg.declared_queues)
    return settings, cfg


def _warn_of_undeclared_queues(served: list[str] | None, declared: frozenset[str] | None) -> None:
    """A worker of a queue the file does not declare waits for jobs no one can submit
    (a typo, most likely): it runs, as its file may be behind the API node's, but says so."""
    unknown = sorted(set(served or ()) - declared) if declared is not None else []
    if unknown:
        logging.getLogger("jobyard.worker").warning(
            "serving queues the configuration does not declare: %s (declared: %s)",
            ", ".join(unknown),
            ", ".join(sorted(declared or ())),
        )


def _split(value: str | None) -> list[str] | None:
    return [q.strip() for q in value.split(",") if q.strip()] if value else None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(envvar="JOBYARD_HOST")] = None,
    port: Annotated[int | None, typer.Option(envvar="JOBYARD_PORT")] = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="API (and scheduler) only")
    ] = False,
    concurrency: ConcurrencyOpt = None,
    queues: QueuesOpt = None,
    name: NameOpt = None,
    tags: TagsOpt = None,
    drain_timeout: DrainTimeoutOpt = None,
    log_level: LogLevelOpt = "info",
    log_format: LogFormatOpt = "text",
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            envvar="JOBYARD_ACCESS_LOG",
            help="log a line for every HTTP request answered (at info)",
        ),
    ] = False,
) -> None:
    """Run the API server, the scheduler and (unless --no-worker) a worker in one process."""
    import uvicorn

    from jobyard.api import create_app
    from jobyard.node import Node

    settings, cfg = _load_node_settings(
        config,
        database_url,
        concurrency,
        queues,
        name,
        log_level,
        log_format,
        tags=tags,
        drain_timeout=drain_timeout,
        host=host,
        port=port,
    )
    _check_port(settings.host, settings.port)  # taken: say so before anything starts
    check_database(settings.database_url)
    node = Node(settings, cfg, worker=not no_worker)
    _check_worker_name(node)
    app = create_app(node)
    _freeze_heap()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        # A line a request costs the server a tenth of a request's CPU; what changed is
        # in the audit log and the request counts are in /metrics, so it is asked for.
        access_log=access_log,
        timeout_graceful_shutdown=5,
    )


def _check_worker_name(node: Node) -> None:
    """Fail in one line (exit 1) when a worker of this ``--name`` still runs.

    The worker refuses it as it starts, in the app's startup, whose failure uvicorn
    reports as a traceback: so look here first (a new database has no workers yet).
    """
    from sqlalchemy import inspect

    from jobyard.clock import utcnow
    from jobyard.store.tables import workers
    from jobyard.worker.loop import NameInUse

    if node.worker is None or not inspect(node.store.engine).has_table(workers.name):
        return
    try:
        node.worker.refuse_namesake(utcnow())
    except NameInUse as exc:
        fail(str(exc), 1)


def _check_port(host: str, port: int) -> None:
    """Fail in one line (exit 1) when ``host:port`` cannot be listened on.

    uvicorn binds only after the app's startup, by which time the node has migrated
    the database and started its worker; so every address the host names is tried
    here first, and let go. (A port taken in between still fails, in uvicorn's words.)
    """
    if port == 0:  # any free port: nothing to check
        return
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        fail(f"cannot listen on {host}:{port}: {(exc.strerror or str(exc)).lower()}", 1)
    for family, kind, proto, _, address in found:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                said = (exc.strerror or str(exc)).lower()
                fail(f"cannot listen on {host}:{port}: {said}", 1)


@app.command()
def worker(
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    concurrency: ConcurrencyOpt = None,
    queues: QueuesOpt = None,
    name: NameOpt = None,
    tags: TagsOpt = None,
    drain_timeout: DrainTimeoutOpt = None,
    log_level: LogLevelOpt = "info",
    log_format: LogFormatOpt = "text",
) -> None:
    """Run a worker alone against the database.

    SIGTERM or Ctrl-C (or a drain request through the API) stops claiming, lets
    running jobs finish for up to --drain-timeout, hands the rest back to the
    queue, and exits 0. A second signal hands them back at once. It exits 1, naming
    them, when the database did not take some hand-backs (it was away); and, handing
    back what it runs at once, when it was forgotten while it ran (its row removed by
    ``jobyard forget``, or taken by a worker of the same name).
    """
    import signal
    import threading

    from jobyard.node import Node
    from jobyard.worker.loop import NameInUse

    settings, cfg = _load_node_settings(
        config,
        database_url,
        concurrency,
        queues,
        name,
        log_level,
        log_format,
        tags=tags,
        drain_timeout=drain_timeout,
        sends=False,
    )
    check_database(settings.database_url)
    node = Node(settings, cfg, worker=True, scheduler=False, api=False)
    assert node.worker is not None
    work = node.worker
    signals: list[int] = []
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        signals.append(signum)
        if len(signals) > 1:
            work.hurry()
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    _freeze_heap()
    try:
        node.start()
    except NameInUse as exc:  # nothing of this worker runs: no stop, which would unregister it
        fail(str(exc), 1)
    # A drain requested through the API stops the worker from its own thread: look
    # for that too (Event offers no wait-for-either; half a second is soon enough).
    while not stop.wait(0.5) and not work.stopped.is_set():
        pass
    if signals:
        work.stop(reason=f"stopped by {signal.Signals(signals[0]).name}")
    node.stop()
    if work.unreturned:
        ids = ", ".join(str(job_id) for job_id in work.unreturned)
        fail(
            f"jobs not handed back, the database did not answer: {ids} "
            "(their processes were stopped; the jobs are recovered once their leases lapse)",
            1,
        )
    if work.forgotten:
        fail(f"{work.forgotten}; it stopped and handed its jobs back", 1)


def _freeze_heap() -> None:
    """What exists by now (modules, the app, the node) lives as long as the process: out
    of the collector's sight, a full collection no longer walks its ~200,000 objects
    (100 ms each time, several times a second while batches of jobs come in or end)."""
    gc.collect()
    gc.freeze()


@app.command()
def migrate(database_url: DatabaseOpt = None) -> None:
    """Create or upgrade the database schema (serve and worker do it on start too)."""
    from jobyard.store.migrate import revisions

    settings = read_settings({"database_url": database_url})
    store = open_database(settings.database_url)
    before = store.migrate()
    after = revisions(store.engine)[0]
    store.close()
    if before is None:
        typer.echo(f"database schema created at revision {after} ({store.dialect})")
    elif before != after:
        typer.echo(f"database schema upgraded from revision {before} to {after} ({store.dialect})")
    else:
        typer.echo(f"database is up to date at revision {after} ({store.dialect})")


@app.command()
def version() -> None:
    """Print the version."""
    from jobyard import __version__

    typer.echo(__version__)


def _version_asked(asked: bool) -> None:
    if asked:
        version()
        raise typer.Exit()


@app.callback()
def _everywhere(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_asked, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Options before any command."""


_CLIENT_COMMANDS = (
    cli_jobs,
    cli_logs,
    cli_watch,
    cli_types,
    cli_workflows,
    cli_queues,
    cli_schedules,
    cli_workers,
    cli_notify,
    cli_health,
    cli_access,
)
for _module in _CLIENT_COMMANDS:
    _module.register(app)
credentials.add_to(app)  # --token, --user and --password on each command that takes --server
cli_session.register(app)  # login and logout bring their own credentials
cli_users.register(app)  # on the database, no server
cli_maintenance.register(app)  # prune and backup: on the database too


def main() -> None:
    allocator.limit_arenas()  # before any thread allocates: see jobyard/cli/allocator.py
    app(prog_name="jobyard")


if __name__ == "__main__":  # pragma: no cover
    main()
