"""``jobyard notifications``: the outbox — what was told to whom, and how delivery went."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from jobyard.cli.common import DEFAULT_SERVER, JsonOpt, ServerOpt, connect, print_view

if TYPE_CHECKING:
    from rich.table import Table

    from jobyard.client.sync import Notification

PANEL = "Notifications (client commands)"
STATUS_STYLES = {"sent": "green", "pending": "yellow", "failed": "bold red", "recorded": "dim"}


def notifications(
    status: Annotated[
        str | None, typer.Option(help="pending, sent, failed or recorded (comma separated).")
    ] = None,
    event: Annotated[
        str | None, typer.Option(help="e.g. failed, sla_breach, workflow_failed.")
    ] = None,
    job: Annotated[int | None, typer.Option(help="Only this job's notifications.")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=500)] = 50,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """List notifications, newest first: event, job, channel, delivery state, last error."""
    with connect(server) as client:
        found = client.notifications(page, per_page, status=status, event=event, job=job)
    print_view(found, json_, lambda shown: notifications_table(shown.items, shown.total))


def notifications_table(items: Sequence[Notification], total: int) -> Table:
    from rich.text import Text

    from jobyard.cli.render import short_moment
    from jobyard.cli.tables import Column, fit_table

    columns = (
        Column("id", "key", justify="right"),
        Column("created", "fixed", drop=2),
        Column("event", "fixed"),
        Column("job", "key", justify="right"),
        Column("channel", "key", drop=3),
        Column("status", "fixed"),
        Column("tries", "fixed", drop=1, justify="right"),
        Column("last error", "text", drop=4),
    )
    rows = [
        (
            str(note.id),
            short_moment(note.created_at) if note.created_at else "",
            note.event,
            "" if note.job_id is None else str(note.job_id),
            note.channel or "",
            Text(note.status, style=STATUS_STYLES.get(note.status, "")),
            str(note.attempts),
            note.last_error or "",
        )
        for note in items
    ]
    return fit_table(columns, rows, caption=f"{len(items)} of {total} notifications")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(notifications)
