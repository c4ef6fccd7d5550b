"""Engines: URL normalisation and per-dialect connection settings."""

from __future__ import annotations

import hashlib
import json
import os
import select
import socket
import sqlite3
import time
from functools import partial
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError

from jobyard.store.coltypes import MYSQL
from jobyard.text import fold

#: Where the store says how SQLite's next transaction on a connection begins (see
#: :func:`_sqlite_do_begin`): the key in the pooled connection's ``info``.
SQLITE_BEGIN = "jobyard_sqlite_begin"

_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "mariadb+pymysql": "mysql+pymysql",
}


#: libpq settings that notice a dead network within a bounded time, when packets just
#: vanish (a cable, a firewall, a partition: no reset ever comes). Without them a
#: statement waiting on such a link blocks for the kernel's ~15 minutes of retransmits,
#: and an idle connection (LISTEN) for ever. ``tcp_user_timeout``: data unacknowledged
#: for 20 s fails the statement; keepalives: an idle link that stops answering is found
#: within 25 s. A URL query parameter of the same name wins (docs/workers.md).
POSTGRES_NETWORK: dict[str, int] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 20_000,
}
#: The server's side of the same watch, in its settings' names (and units): a server keeps
#: the session of a client that vanished for the kernel's two hours, and a transaction
#: the cut found open keeps its rows locked as long. A worker cut off inside its lease
#: renewal holds its jobs' rows, and the scheduler's recovery of them (and every other
#: pass of its loop) would wait on them. Set on each new connection from the client's
#: values, the URL's included; as statements, since PgBouncer refuses an ``options``
#: startup parameter.
SERVER_NETWORK = {
    "keepalives_idle": "tcp_keepalives_idle",
    "keepalives_interval": "tcp_keepalives_interval",
    "keepalives_count": "tcp_keepalives_count",
    "tcp_user_timeout": "tcp_user_timeout",
}
SQLITE_BUSY_MS = 30_000  # how long a SQLite writer waits for the write lock
#: A SQLite URL's ``synchronous`` query parameter (``sqlite:///jobyard.db?synchronous=full``):
#: ``normal`` (the default) syncs the WAL at checkpoints only, so a commit survives the
#: process being killed but those since the last sync may not survive a power cut or an
#: OS crash; ``full`` syncs at every commit, so they do, for one ``fsync`` each (any
#: case; docs/deploy.md).
SQLITE_SYNCHRONOUS = ("normal", "full")
#: Query parameters of a database URL that are the engine's, not the driver's.
ENGINE_QUERY = ("synchronous",)
#: PyMySQL's: without read/write timeouts a statement on a dead link blocks as long.
#: Generous, as they bound a legitimate statement too (InnoDB waits 50 s for a lock).
MYSQL_NETWORK: dict[str, int] = {"connect_timeout": 10, "read_timeout": 120, "write_timeout": 60}


def network_options(url: URL) -> dict[str, int]:
    """The connection's network timeouts for ``url``'s backend, less those its query sets."""
    backend = url.get_backend_name()
    defaults = POSTGRES_NETWORK if backend == "postgresql" else {}
    if backend in MYSQL:
        defaults = MYSQL_NETWORK
    return {key: value for key, value in defaults.items() if key not in url.query}


def server_network(url: URL) -> dict[str, str]:
    """The PostgreSQL server's settings that watch this connection's link as the client
    does: the client's timeouts with the URL's own, for whole numbers only (libpq
    refuses any other), none of the keep-alives when the URL turns them off."""
    values: dict[str, object] = {**POSTGRES_NETWORK, **url.query}
    settings = {
        server: str(values[client])
        for client, server in SERVER_NETWORK.items()
        if str(values.get(client, "")).isdigit()
    }
    if str(values.get("keepalives")) == "0":
        return {name: value for name, value in settings.items() if "keepalives" not in name}
    return settings


def user_lock_name(prefix: str, database: str | None) -> str:
    """The name of a MySQL/MariaDB ``GET_LOCK`` for one database.

    Those locks are the server's, not the database's (PostgreSQL's advisory locks
    are the database's): without the database in the name, deployments sharing a
    server would share their scheduler's lead. MySQL takes names of 64 characters
    at most; a longer one becomes a digest.
    """
    name = f"{prefix}.{database or ''}"
    if len(name) <= 64:
        return name
    return f"{prefix}.{hashlib.sha256(name.encode()).hexdigest()[:40]}"


def normalize_url(url: str | URL) -> URL:
    """Pick the bundled driver for a bare ``postgresql://``, ``mysql://`` or ``mariadb://`` URL."""
    parsed = make_url(url)
    parsed = parsed.set(drivername=_DRIVERS.get(parsed.drivername, parsed.drivername))
    if parsed.get_backend_name() in MYSQL and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def make_engine(url: URL) -> Engine:
    """An engine for ``url`` with the settings every store connection relies on."""
    # Non-ASCII text stays readable in the JSON, so a search over args finds it.
    options: dict[str, Any] = {"json_serializer": partial(json.dumps, ensure_ascii=False)}
    if url.get_backend_name() == "sqlite":
        # Last in, first out: the connection used last is used again. In WAL mode a
        # connection drops its whole page cache when another connection wrote since its
        # last transaction; handed out in turn (FIFO), every transaction of a busy
        # process began cold and read its pages again (~40 reads per submitted job).
        if _sqlite_file(url):  # an in-memory database has a pool of its own kind
            options["pool_use_lifo"] = True
        synchronous = sqlite_synchronous(url)
        engine = create_engine(driver_url(url), connect_args={"timeout": 30}, **options)
        event.listen(engine, "connect", partial(_sqlite_connect, synchronous=synchronous))
        # The dialect's own hook, not a "begin" event: any connection event makes
        # SQLAlchemy dispatch events around every statement of the engine (~30 % of a
        # one-statement read's time through it).
        engine.dialect.do_begin = _sqlite_do_begin  # type: ignore[method-assign]
        return engine
    options.update(pool_size=5, max_overflow=10, pool_recycle=3600)
    if url.get_backend_name() in MYSQL:
        # InnoDB's default REPEATABLE READ takes gap locks on claims and blocks inserts.
        options["isolation_level"] = "READ COMMITTED"
    engine = create_engine(url, connect_args=network_options(url), **options)
    event.listen(engine, "checkout", _discard_if_closed_by_server)
    if url.get_backend_name() == "postgresql" and (settings := server_network(url)):
        event.listen(engine, "connect", partial(_postgres_connect, settings=settings))
    return engine


def _postgres_connect(dbapi_connection: Any, _record: Any, *, settings: dict[str, str]) -> None:
    """Set ``settings`` for the session (:data:`SERVER_NETWORK`; on a Unix socket the
    server ignores them)."""
    if dbapi_connection.info.server_version < 120000:  # no tcp_user_timeout before 12
        settings = {k: v for k, v in settings.items() if k != "tcp_user_timeout"}
    calls = ", ".join("set_config(%s, %s, false)" for _ in settings)
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SELECT {calls}", [part for item in settings.items() for part in item])
    dbapi_connection.commit()


def _sqlite_file(url: URL) -> bool:
    """Whether ``url`` names a SQLite database in a file (not ``:memory:``)."""
    return url.database not in (None, "", ":memory:") and url.query.get("mode") != "memory"


def _discard_if_closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server closed (it restarted) is replaced before use.

    Instead of a ping (a round trip per transaction), look whether the socket has
    something to read: an idle connection never has, unless the server said goodbye
    (or closed it). Then the pool discards it and checks out another.
    A connection that breaks later fails its statement; the caller retries.
    """
    sock = _socket_of(dbapi_connection)
    if sock is None:
        return
    poller = select.poll()  # select.select refuses descriptors from 1024 on
    try:
        poller.register(sock, select.POLLIN)
        ready = poller.poll(0)
    except (OSError, ValueError) as exc:  # closed already
        raise DisconnectionError("the connection is closed") from exc
    if ready:
        raise DisconnectionError("the server closed the connection")


def _socket_of(dbapi_connection: Any) -> int | socket.socket | None:
    if hasattr(dbapi_connection, "fileno"):  # psycopg
        try:
            return int(dbapi_connection.fileno())
        except Exception as exc:  # closed
            raise DisconnectionError("the connection is closed") from exc
    sock = getattr(dbapi_connection, "_sock", None)  # PyMySQL
    if sock is None and getattr(dbapi_connection, "open", True) is False:
        raise DisconnectionError("the connection is closed")
    return sock


def driver_url(url: URL) -> URL:
    """``url`` as the driver is to see it: without the engine's own parameters."""
    return url.difference_update_query(ENGINE_QUERY)


def sqlite_synchronous(url: URL) -> str:
    """The ``synchronous`` setting a SQLite URL asks for (:data:`SQLITE_SYNCHRONOUS`)."""
    value = url.query.get("synchronous", SQLITE_SYNCHRONOUS[0])
    if not isinstance(value, str) or value.lower() not in SQLITE_SYNCHRONOUS:  # a tuple: twice
        raise ValueError(
            f"the SQLite URL's synchronous must be {' or '.join(SQLITE_SYNCHRONOUS)}, "
            f"not {value if isinstance(value, str) else ', '.join(value)!r}"
        )
    return value.lower()


def _sqlite_connect(dbapi_connection: Any, _record: Any, *, synchronous: str) -> None:
    # The driver must not emit BEGIN itself: _sqlite_do_begin does.
    dbapi_connection.isolation_level = None
    # lower() as the other databases', for searches: SQLite's own folds ASCII letters only.
    dbapi_connection.create_function("jobyard_lower", 1, _lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
    _sqlite_wal(cursor)
    for pragma in (f"synchronous = {synchronous.upper()}", "foreign_keys = ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _lower(text: object) -> object:
    return fold(text) if isinstance(text, str) else text


def _sqlite_wal(cursor: Any) -> None:
    """Switch the database to WAL (a no-op once it is).

    On a new file, connections opened at once (a server and a worker starting
    together, concurrent migrations) may all try the switch; it needs the file to
    itself, and SQLite answers "database is locked" at once rather than wait in
    the busy handler (waiting could deadlock): try again, up to the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def _sqlite_do_begin(dbapi_connection: Any) -> None:
    """Begin a SQLite transaction as the store asked for this one, else ``BEGIN IMMEDIATE``.

    A transaction that reads and then writes would need to upgrade its lock, and two
    such transactions deadlock (SQLITE_BUSY at once). Taking the write lock up front
    makes writers queue on busy_timeout instead: every transaction does, unless the
    store said otherwise just before it began (:data:`SQLITE_BEGIN`, read once). Its
    reads ask for a plain ``BEGIN``, so that readers never wait for writers (WAL); a
    read of one statement for none at all: SQLite runs it in a transaction of its own
    (COMMIT then finds none, and does nothing).
    """
    statement = dbapi_connection.info.pop(SQLITE_BEGIN, "BEGIN IMMEDIATE")
    if statement is not None:
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()


DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


def installation(database_url: str) -> str:
    """A short name of the installation, the same for every node of one database: a
    digest of the database's kind, host, port and name (SQLite: its real path). How a
    node spells its URL (``postgres://`` or ``postgresql+psycopg://``, ``mariadb://`` or
    ``mysql://``, a default port, a user, a password, options such as
    ``?connect_timeout=`` or ``?synchronous=``) may differ between nodes, or change
    between starts, and is not part of it."""
    url = normalize_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        place = os.path.realpath(url.database) if url.database else ""
        return hashlib.sha256(f"sqlite:{place}".encode()).hexdigest()[:12]
    host = (url.host or "localhost").lower()
    port = url.port or DEFAULT_PORTS.get(backend, 0)
    text = f"{backend}://{host}:{port}/{url.database or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def spelled_installation(database_url: str) -> str:
    """The name earlier releases gave the installation: a digest of the URL as this node
    spells it (without its password). A Slurm job this node marked with it before an
    upgrade is found as the installation's all the same (one another node marked, which
    spelled the URL otherwise, is not: those releases did not know it either)."""
    url = driver_url(make_url(database_url))
    if url.get_backend_name() == "sqlite" and url.database:
        url = url.set(database=os.path.abspath(url.database))
    # URL.set takes None as "unchanged": the password is dropped by replacing it.
    text = url._replace(password=None).render_as_string(hide_password=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
