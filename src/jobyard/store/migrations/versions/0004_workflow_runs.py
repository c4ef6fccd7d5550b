"""Workflow runs, and which run and node a job belongs to.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("workflow_run", sa.BigInteger(), nullable=True))
    op.add_column("jobs", sa.Column("node", sa.String(length=200), nullable=True))
    op.create_index("ix_jobs_workflow_run_state", "jobs", ["workflow_run", "state"], unique=False)
    op.create_table(
        "workflow_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("workflow", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("args", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("trigger", sa.String(length=200), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_runs")),
        sqlite_autoincrement=True,
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_index("ix_workflow_runs_workflow", "workflow_runs", ["workflow"], unique=False)
    op.create_index("ix_workflow_runs_created_at", "workflow_runs", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_workflow_runs_created_at", table_name="workflow_runs")
    op.drop_index("ix_workflow_runs_workflow", table_name="workflow_runs")
    op.drop_table("workflow_runs")
    op.drop_index("ix_jobs_workflow_run_state", table_name="jobs")
    op.drop_column("jobs", "node")
    op.drop_column("jobs", "workflow_run")
