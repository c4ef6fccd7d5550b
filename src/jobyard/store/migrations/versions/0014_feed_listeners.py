"""PostgreSQL: a new event sends its NOTIFY only while some API process's live feed listens.

PostgreSQL wakes every backend that listens on any channel of the database for
each transaction that notifies, and each woken backend spends a transaction
reading the notification queue. Before, every insert into ``job_events`` (a
job's submit, claim and end) notified ``jobyard_events``, so each job cost a
transaction in every worker's and every API process's listening backend
(about 9 a job with an API node and two workers), for a channel that only
feeds live streams. Now an API process listens only while it has subscribers
and records a lease in ``feed_listeners`` meanwhile; the trigger notifies only
while a lease is current (the database's clock, UTC). An event inserted just
before a new lease committed reaches the feed by its catch-up read or, at
worst, by its one-second safety poll.

Upgrade every API node together: a node older than this revision listens
without a lease, so its live streams would get new events by that poll only.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None

_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_OPTIONS: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

NOTIFY_WHILE_LISTENED = """
CREATE OR REPLACE FUNCTION job_events_notify() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM feed_listeners WHERE until > (now() AT TIME ZONE 'UTC')) THEN
        PERFORM pg_notify('jobyard_events', '');
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

NOTIFY_ALWAYS = """
CREATE OR REPLACE FUNCTION job_events_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('jobyard_events', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "feed_listeners",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("until", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_feed_listeners")),
        **_OPTIONS,
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(NOTIFY_WHILE_LISTENED)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(NOTIFY_ALWAYS)
    op.drop_table("feed_listeners")
