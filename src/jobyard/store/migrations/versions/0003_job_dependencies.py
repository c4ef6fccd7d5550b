"""Dependencies between jobs (a job waits for others to end in a given way).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "job_dependencies",
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("upstream_id", sa.BigInteger(), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("met", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "upstream_id", name=op.f("pk_job_dependencies")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_index(
        "ix_job_dependencies_upstream_id", "job_dependencies", ["upstream_id"], unique=False
    )
    op.add_column(
        "jobs", sa.Column("deps_pending", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("jobs", "deps_pending")
    op.drop_index("ix_job_dependencies_upstream_id", table_name="job_dependencies")
    op.drop_table("job_dependencies")
