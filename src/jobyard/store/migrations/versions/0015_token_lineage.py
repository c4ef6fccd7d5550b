"""API tokens remember the token they were made with, so a revoke reaches them too.

``api_tokens.made_by`` is the id of the token a token was created with (null:
made with a password or a session). Revoking a token revokes the tokens made
with it, transitively (``store.access``). Tokens made before this revision have
no parent recorded: a revoke does not reach them.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("made_by", sa.BigInteger(), nullable=True))
    op.create_index("ix_api_tokens_made_by", "api_tokens", ["made_by"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_made_by", table_name="api_tokens")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("made_by")
