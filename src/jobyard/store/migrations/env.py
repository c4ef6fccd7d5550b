"""Alembic environment: runs on the connection handed in by the store.

``jobyard.store.migrate`` passes its connection in ``config.attributes["connection"]``,
inside a transaction it commits itself. A ``sqlalchemy.url`` main option is used
instead when there is no connection (offline SQL scripts, ad-hoc revisions).
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from jobyard.store.coltypes import UTCDateTime
from jobyard.store.engine import make_engine, normalize_url
from jobyard.store.tables import metadata


def render_item(kind: str, obj: Any, autogen: AutogenContext) -> str | Literal[False]:
    """Render the timestamp type as plain SQLAlchemy, so scripts need no app import."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        autogen.imports.add("from sqlalchemy.dialects import mysql")
        return 'sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")'
    return False


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_item=render_item)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    elif connection is not None:
        run(connection)
    elif url:
        engine = make_engine(normalize_url(url))
        with engine.connect() as conn:
            run(conn)
            conn.commit()
        engine.dispose()
    else:
        raise RuntimeError("no connection and no sqlalchemy.url to migrate")


main()
