"""Monitoring: the notification outbox, resource samples, a cursor, run and wait times.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("recipients", sa.JSON(none_as_null=True), nullable=True))
        batch.add_column(sa.Column("source_event", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", _TIME, nullable=True))
        batch.add_column(sa.Column("claimed_until", _TIME, nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("sent_at", _TIME, nullable=True))
        batch.add_column(sa.Column("updated_at", _TIME, nullable=True))
    op.create_index(
        "ix_notifications_status_next_attempt_at",
        "notifications",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ux_notifications_source_event_channel",
        "notifications",
        ["source_event", "channel"],
        unique=True,
    )
    op.create_table(
        "job_samples",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("cpu_seconds", sa.Double(), nullable=False),
        sa.Column("rss", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_samples")),
        sqlite_autoincrement=True,
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_index("ix_job_samples_job_id_id", "job_samples", ["job_id", "id"])
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cursors")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("runtime_seconds", sa.Double(), nullable=True))
        batch.add_column(sa.Column("wait_seconds", sa.Double(), nullable=True))
    op.create_index("ix_jobs_type_state_finished_at", "jobs", ["type", "state", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_type_state_finished_at", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("wait_seconds")
        batch.drop_column("runtime_seconds")
    op.drop_table("cursors")
    op.drop_index("ix_job_samples_job_id_id", table_name="job_samples")
    op.drop_table("job_samples")
    op.drop_index("ux_notifications_source_event_channel", table_name="notifications")
    op.drop_index("ix_notifications_status_next_attempt_at", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        for name in (
            "updated_at",
            "sent_at",
            "last_error",
            "claimed_until",
            "next_attempt_at",
            "attempts",
            "source_event",
            "recipients",
            "channel",
        ):
            batch.drop_column(name)
