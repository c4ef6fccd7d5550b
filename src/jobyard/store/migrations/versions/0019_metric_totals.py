"""What removed rows had counted in ``/metrics``: running totals, so no counter goes down.

The run time and dispatch latency histograms, the notifications sent and failed
and the SLA breaches were counted over the rows still stored: removing a job or
pruning notifications lowered them, which Prometheus reads as a counter reset.
A removal now adds what its rows counted to ``metric_totals`` in its own
transaction, and a scrape reports the rows plus the totals. What was removed
before this revision is not known any more: the totals start at 0.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "metric_totals",
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("bucket", sa.String(16), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint(
            "metric", "label", "event", "bucket", name=op.f("pk_metric_totals")
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def downgrade() -> None:
    op.drop_table("metric_totals")
