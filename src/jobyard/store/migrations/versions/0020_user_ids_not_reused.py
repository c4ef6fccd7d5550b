"""On SQLite, the ids of removed users and tokens are not given again.

SQLite gave a new row the highest id plus one: remove the newest user, add
another, and the new one had the removed one's id. A request let in as the
removed user before it went acted on the new user's tokens (``store.access``
now also checks, as it writes, that the user is still there by id and name).
``users`` and ``api_tokens`` are rebuilt as AUTOINCREMENT tables, their rows and
ids kept. No foreign key points at them, so dropping the old tables removes no
other row. An id removed before this revision, above every one kept, may still
be given once more. PostgreSQL and MariaDB never gave an id twice: nothing to do.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | None = None
depends_on: str | None = None

_TABLES = ("users", "api_tokens")


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)


def _rebuild(autoincrement: bool) -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    for table in _TABLES:
        kwargs = {"sqlite_autoincrement": autoincrement}
        with op.batch_alter_table(table, recreate="always", table_kwargs=kwargs):
            pass
