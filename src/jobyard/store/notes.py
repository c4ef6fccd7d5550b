"""Queries of notifications: the outbox of messages to channels, and plain records.

A row is one message to one channel (``status`` pending → sent | failed) or a
record that no channel asked for (``status`` recorded, ``channel`` NULL). Rows
made from an event carry its id in ``source_event``, so the notifier can read
the event log again after a restart without making any message twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from jobyard.store import totals
from jobyard.store.coltypes import UTCDateTime
from jobyard.store.rows import load_json
from jobyard.store.tables import cursors, notifications

PENDING, SENT, FAILED, RECORDED = "pending", "sent", "failed", "recorded"


def add_many(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(notifications), list(rows))


def known_sources(conn: Connection, event_ids: Collection[int]) -> set[int]:
    """Which of these events already made their notifications."""
    if not event_ids:
        return set()
    query = select(notifications.c.source_event).where(
        notifications.c.source_event.in_(list(event_ids))
    )
    return {int(value) for value in conn.scalars(query)}


#: Until when a taken message stays taken: by its channel, and for a channel not there.
Marks = tuple[Mapping[str, datetime], datetime]


def claim_due(conn: Connection, now: datetime, until: Marks, limit: int) -> list[dict[str, Any]]:
    """Lock up to ``limit`` pending messages that are due and mark each taken until its
    channel's time in ``until`` (one update for them all)."""
    c = notifications.c
    free = or_(c.claimed_until.is_(None), c.claimed_until < now)
    query = (
        select(c.id)
        .where(c.status == PENDING, c.next_attempt_at <= now, free)
        .order_by(c.next_attempt_at, c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(conn.scalars(query))
    if not ids:
        return []
    by_channel, otherwise = until
    marks = {channel: literal(when, UTCDateTime()) for channel, when in by_channel.items()}
    rest = literal(otherwise, UTCDateTime())
    mark = case(marks, value=c.channel, else_=rest) if marks else rest
    conn.execute(update(notifications).where(c.id.in_(ids)).values(claimed_until=mark))
    rows = conn.execute(select(notifications).where(c.id.in_(ids)).order_by(c.id)).mappings()
    return [_item(row) for row in rows]


def record(conn: Connection, note_id: int, values: dict[str, Any]) -> dict[str, Any] | None:
    """Set ``values`` (a delivery outcome) on a pending message; None if it is not pending."""
    c = notifications.c
    changed = conn.execute(
        update(notifications).where(and_(c.id == note_id, c.status == PENDING)).values(**values)
    ).rowcount
    if not changed:
        return None
    row = conn.execute(select(notifications).where(c.id == note_id)).mappings().one()
    return _item(row)


def page(
    conn: Connection,
    page: int,
    per_page: int,
    *,
    status: Collection[str] = (),
    event: Collection[str] = (),
    job_id: int | None = None,
    run_id: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    c = notifications.c
    where: list[ColumnElement[bool]] = []
    if status:
        where.append(c.status.in_(list(status)))
    if event:
        where.append(c.event.in_(list(event)))
    if job_id is not None:
        where.append(c.job_id == job_id)
    if run_id is not None:
        where.append(c.run_id == run_id)
    total = conn.execute(select(func.count()).select_from(notifications).where(*where)).scalar_one()
    query = (
        select(notifications)
        .where(*where)
        .order_by(c.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return [_item(row) for row in conn.execute(query).mappings()], int(total)


def counts(conn: Connection) -> dict[tuple[str, str, str], int]:
    """Messages by (event, channel, status), removed ones included (sent and failed:
    :func:`removed`); records have channel ''."""
    c = notifications.c
    channel = func.coalesce(c.channel, "")
    stored = select(c.event, channel, c.status, func.count()).group_by(c.event, channel, c.status)
    found: dict[tuple[str, str, str], int] = {}
    query = totals.with_totals(stored, totals.NOTIFICATIONS, "event", "label", "bucket")
    for e, ch, st, n in conn.execute(query):
        found[(e, ch, st)] = found.get((e, ch, st), 0) + round(n)
    return found


def breaches(conn: Connection) -> int:
    """SLA breaches so far: one notification source event each (removed ones included)."""
    c = notifications.c
    stored = select(func.count(func.distinct(c.source_event))).where(c.event == "sla_breach")
    return sum(round(n) for (n,) in conn.execute(totals.with_totals(stored, totals.BREACHES)))


def removed(conn: Connection, ids: Sequence[int]) -> int:
    """Delete these notifications, adding what they counted to the totals; how many went.

    Notification removals go one at a time (:func:`totals.lock`): a breach is
    counted once its source event has no message left, which one removal could not
    tell while another removes that event's other messages.
    """
    if not ids:
        return 0
    totals.lock(conn, totals.BREACHES)
    c = notifications.c
    query = (
        delete(notifications)
        .where(c.id.in_(list(ids)))
        .returning(c.event, c.channel, c.status, c.source_event)
    )
    gone = conn.execute(query).all()
    told = Counter((ch or "", e, st) for e, ch, st, _ in gone if st in (SENT, FAILED))
    rows = [totals.row(totals.NOTIFICATIONS, *key, value=n) for key, n in told.items()]
    breached = {source for e, _, _, source in gone if e == "sla_breach" and source is not None}
    if breached:
        left = select(c.source_event).where(c.event == "sla_breach", c.source_event.in_(breached))
        over = len(breached - set(conn.scalars(left.distinct())))
        rows.append(totals.row(totals.BREACHES, value=over))
    totals.add(conn, rows)
    return len(gone)


def cursor(conn: Connection, name: str) -> int | None:
    value = conn.execute(select(cursors.c.position).where(cursors.c.name == name)).scalar()
    return None if value is None else int(value)


def set_cursor(conn: Connection, name: str, position: int, now: datetime) -> None:
    changed = conn.execute(
        update(cursors).where(cursors.c.name == name).values(position=position, updated_at=now)
    ).rowcount
    if not changed:
        conn.execute(insert(cursors).values(name=name, position=position, updated_at=now))


def _item(row: Any) -> dict[str, Any]:
    item = dict(row)
    item["data"] = load_json(item["data"]) or {}
    item["recipients"] = load_json(item.get("recipients")) or []
    item.pop("claimed_until", None)
    item.pop("source_event", None)
    return item
