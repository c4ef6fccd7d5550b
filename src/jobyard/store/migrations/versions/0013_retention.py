"""Retention: when a job's log lines or events were pruned, and finished jobs by age.

``logs_pruned_at`` and ``events_pruned_at`` tell the API (and a stream resuming
into the gap) that retention removed those rows of a finished job; the index
on ``(state, finished_at)`` finds the finished jobs older than an age.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("logs_pruned_at", _TIME, nullable=True))
        batch.add_column(sa.Column("events_pruned_at", _TIME, nullable=True))
    op.create_index("ix_jobs_state_finished_at", "jobs", ["state", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_state_finished_at", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("events_pruned_at")
        batch.drop_column("logs_pruned_at")
