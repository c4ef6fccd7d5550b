"""``jobyard notifications``: the outbox — what was told to whom, and how delivery went —
and ``notifications channels``: through which channels, by which rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobyard.cli.common import DEFAULT_SERVER, JsonOpt, ServerOpt, connect, counted, print_view
from jobyard.cli.groups import group

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from jobyard.client.sync import Notification

PANEL = "Notifications (client commands)"
STATUS_STYLES = {"sent": "green", "pending": "yellow", "failed": "bold red", "recorded": "dim"}
notifications_app = group(
    "List the notifications (the default), or the channels and rules they are sent by."
)


@notifications_app.command("list")
def notifications(
    status: Annotated[
        str | None, typer.Option(help="pending, sent, failed or recorded (comma separated).")
    ] = None,
    event: Annotated[
        str | None, typer.Option(help="e.g. failed, sla_breach, workflow_failed.")
    ] = None,
    job: Annotated[int | None, typer.Option(help="Only this job's notifications.")] = None,
    run: Annotated[int | None, typer.Option(help="Only this workflow run's notifications.")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=500)] = 50,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """List notifications, newest first: event, job, channel, delivery state, last error."""
    with connect(server) as client:
        found = client.notifications(page, per_page, status=status, event=event, job=job, run=run)
    print_view(found, json_, lambda shown: notifications_table(shown.items, shown.total))


@notifications_app.command("channels")
def channels(json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """List the configured channels (without secrets) and the rules that route events to them."""
    with connect(server) as client:
        section = client.notification_channels()
    print_view(section, json_, channels_view)


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


def channels_view(section: Mapping[str, Any]) -> RenderableType:
    """A table of the channels (name, type, where to, tries), then one of the rules."""
    from rich.console import Group

    from jobyard.cli.tables import Column, fit_table

    found: Mapping[str, Mapping[str, Any]] = section.get("channels") or {}
    rules: Sequence[Mapping[str, Any]] = section.get("rules") or []
    channel_columns = (
        Column("channel", "key"),
        Column("type", "fixed"),
        Column("to", "words"),
        Column("tries", "text", drop=1),
    )
    channel_rows = [
        (name, channel["type"], _destination(channel), _retry(channel.get("retry") or {}))
        for name, channel in found.items()
    ]
    rule_columns = (
        Column("events", "words"),
        Column("channels", "words"),
        Column("only for", "words", drop=2),
        Column("recipients", "words", drop=1),
    )
    rule_rows = [
        (", ".join(rule["events"]), ", ".join(rule["channels"]), _scope(rule), _listed(rule["to"]))
        for rule in rules
    ]
    return Group(
        fit_table(channel_columns, channel_rows, caption=counted(len(found), "channels")),
        fit_table(rule_columns, rule_rows, caption=counted(len(rules), "rules")),
    )


def _destination(channel: Mapping[str, Any]) -> str:
    """Whom an email channel writes to (through which server), a webhook's URL, an
    AMQP channel's exchange on its broker."""
    if channel["type"] == "email":
        return f"{_listed(channel.get('to') or [])} via {channel['host']}:{channel['port']}"
    if channel["type"] == "amqp":
        return f"exchange {channel['exchange']} on {channel['url']}"
    return str(channel.get("url", ""))


def _retry(policy: Mapping[str, Any]) -> str:
    from jobyard.units import duration

    if not policy:
        return ""
    tries = policy["max_attempts"]
    first, most = duration(policy["initial"]), duration(policy["max_delay"])
    return f"{tries} {'try' if tries == 1 else 'tries'}, {first} apart, doubling up to {most}"


def _scope(rule: Mapping[str, Any]) -> str:
    types = [f"type {name}" for name in rule.get("job_types") or []]
    workflows = [f"workflow {name}" for name in rule.get("workflows") or []]
    return ", ".join(types + workflows) or "all"


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names) or "—"


def register(app: typer.Typer) -> None:
    app.add_typer(notifications_app, name="notifications", rich_help_panel=PANEL)
