"""Column types that behave the same on SQLite, PostgreSQL and MariaDB/MySQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

MYSQL = ("mysql", "mariadb")

#: A 64-bit key; plain INTEGER on SQLite so that the column aliases the rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")

#: Text without a practical size limit (MySQL's TEXT stops at 64 KiB).
LongText = Text().with_variant(mysql.LONGTEXT(), *MYSQL)


def json_column() -> JSON:
    """A JSON column where Python ``None`` is stored as SQL NULL."""
    return JSON(none_as_null=True)


def naive_utc(value: datetime) -> datetime:
    """``value`` as :class:`UTCDateTime` stores it: naive UTC (a naive ``value`` is refused)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time")
    return value.astimezone(UTC).replace(tzinfo=None)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back as timezone-aware UTC.

    Naive datetimes are refused: their time zone is a guess, and a wrong guess
    would shift every comparison against ``now``.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in MYSQL:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else naive_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)
