"""The ``paused`` value of the configuration file last seen for each of its schedules.

A schedule of the file paused or resumed through the API keeps that state until the
file's ``paused`` changes: then the file's value applies. Null: not seen yet (rows
from before this revision, and schedules created through the API).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("schedules", sa.Column("file_paused", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("file_paused")
