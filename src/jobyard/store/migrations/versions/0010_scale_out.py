"""Scale-out: cluster-wide limits, routing tags, worker tags and drain requests.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_OPTIONS: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    op.create_table(
        "limits",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("max_running", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("scope", "name", name=op.f("pk_limits")),
        **_OPTIONS,
    )
    with op.batch_alter_table("jobs") as batch:
        # Existing jobs need no tags: the empty route, which every worker may run.
        batch.add_column(
            sa.Column("route", sa.String(length=255), nullable=False, server_default="")
        )
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("tags", sa.JSON(none_as_null=True), nullable=True))
        batch.add_column(sa.Column("lease_timeout", sa.Double(), nullable=True))
        batch.add_column(sa.Column("drain_requested_at", _TIME, nullable=True))
        batch.add_column(sa.Column("drain_timeout", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        for name in ("drain_timeout", "drain_requested_at", "lease_timeout", "tags"):
            batch.drop_column(name)
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("route")
    op.drop_table("limits")
