"""``jobyard watch``: a live table of the jobs in progress."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobyard.cli import complete
from jobyard.cli.common import DEFAULT_SERVER, PANEL, ListQueueOpt, ListTypeOpt, ServerOpt, connect
from jobyard.cli.credentials import client_auth

if TYPE_CHECKING:
    from rich.table import Table

    from jobyard.client.sync import Client, JobInfo

ORDER = ("running", "paused", "queued", "scheduled", "waiting", "held")
LIMIT = 500


def watch(
    state: Annotated[
        str,
        typer.Option(
            "--state", help="States to show, comma separated.", autocompletion=complete.states
        ),
    ] = "running,paused,queued",
    type_: ListTypeOpt = None,
    queue: ListQueueOpt = None,
    interval: Annotated[
        float, typer.Option(min=0.2, help="Seconds between refreshes without events.")
    ] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print the table once and exit.")] = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Watch running, paused and queued jobs live; Ctrl-C quits.

    The table is refreshed when the server's event stream tells of a change,
    and every --interval seconds anyway (for progress, or when the server
    cannot stream).
    """
    _quit_on_sigint()
    from jobyard.cli.render import console

    with connect(server) as client:

        def snapshot() -> Snapshot:
            return _snapshot(client, state, type_, queue)

        if once:
            console().print(snapshot().table())
            return
        try:
            _refresh(snapshot, _listen(server, type_, queue, client_auth()), interval)
        except KeyboardInterrupt:
            return


class Snapshot:
    """The jobs to show at one moment, in the order shown."""

    def __init__(self, server: str, jobs: list[JobInfo], total: int) -> None:
        rank = {name: index for index, name in enumerate(ORDER)}
        self.server = server
        self.jobs = sorted(jobs, key=lambda job: (rank.get(job.state, len(ORDER)), -job.id))
        self.total = total

    def key(self) -> tuple[object, ...]:
        """What the table shows of the jobs (to tell a change)."""
        return tuple((j.id, j.state, j.control, j.progress, j.attempt) for j in self.jobs)

    def table(self) -> Table:
        from jobyard.cli.render import jobs_table

        counts = Counter(job.state for job in self.jobs)
        # --state may ask for ended jobs too: count them after the live ones
        names = [*ORDER, *sorted(set(counts) - set(ORDER))]
        summary = " · ".join(f"{counts[name]} {name}" for name in names if counts[name])
        shown = f"showing {len(self.jobs)} of {self.total}" if self.total > len(self.jobs) else ""
        parts = (f"jobyard {self.server}", summary or "no jobs", shown)
        title = " · ".join(part for part in parts if part)
        caption = f"updated {datetime.now():%H:%M:%S} · Ctrl-C quits"
        return jobs_table(self.jobs, title=title, caption=caption)


def _snapshot(client: Client, state: str, type_: str | None, queue: str | None) -> Snapshot:
    page = client.jobs(per_page=LIMIT, state=state, type=type_, queue=queue)
    return Snapshot(client.server, page.items, page.total)


def _refresh(snapshot: Callable[[], Snapshot], changed: threading.Event, interval: float) -> None:
    """Redraw in place on a terminal; elsewhere print the table again when the jobs change."""
    from rich.live import Live

    from jobyard.cli.render import console

    out = console()
    current = snapshot()
    if out.is_terminal:
        with Live(current.table(), console=out, refresh_per_second=4) as live:
            while True:
                live.update(_next(snapshot, changed, interval).table())
    out.print(current.table())
    while True:
        latest = _next(snapshot, changed, interval)
        if latest.key() != current.key():
            out.print(latest.table())
            current = latest


# How long the watch waits out a server it cannot reach (a restart) before it gives up
# (exit 5), as the client's event streams do.
UNREACHABLE_FOR = 15.0


def _next(snapshot: Callable[[], Snapshot], changed: threading.Event, interval: float) -> Snapshot:
    from jobyard.client.errors import ServerUnreachable

    time.sleep(0.2)  # at most a few refreshes a second, however many events come
    changed.wait(interval)
    changed.clear()
    down_since: float | None = None
    while True:
        try:
            return snapshot()
        except ServerUnreachable:
            now = time.monotonic()
            down_since = now if down_since is None else down_since
            if now - down_since >= UNREACHABLE_FOR:
                raise
            time.sleep(min(interval, 1.0))


def _quit_on_sigint() -> None:
    """Make SIGINT raise KeyboardInterrupt, the way out of the live table.

    Python leaves SIGINT ignored when it starts with it ignored, as a shell
    without job control starts a command put in the background (``watch &`` in
    a script, or a test runner started so): Ctrl-C or ``kill -INT`` would then
    never stop the watch, which does not end by itself.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _listen(
    server: str, type_: str | None, queue: str | None, credentials: dict[str, Any]
) -> threading.Event:
    """An event set whenever the global event stream tells of a job change.

    Its thread gets the command's ``credentials``: a context variable stays behind.
    """
    changed = threading.Event()

    def run() -> None:
        from jobyard.client.sync import Client

        try:
            with Client(server, **credentials) as client:
                for _ in client.all_events(type=type_, queue=queue, from_now=True):
                    changed.set()
        except Exception:  # no stream (or it broke): the interval refreshes go on
            return

    threading.Thread(target=run, name="watch-events", daemon=True).start()
    return changed


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(watch)
