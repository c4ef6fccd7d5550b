"""A PostgreSQL server watches each store connection's link as the client does.

The client's libpq timeouts find a dead link from its side; the server's keep-alives
and user timeout, set on each new connection from the same values, end the session of
a client that vanished, and with it any transaction the cut found open (the fault is
``tests/faults/test_network_cut.py``).
"""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, text

from jobyard.store.engine import make_engine, normalize_url, server_network
from tests.databases import Servers

NAMES = (
    "tcp_keepalives_idle",
    "tcp_keepalives_interval",
    "tcp_keepalives_count",
    "tcp_user_timeout",
)


def session_settings(url: str) -> dict[str, str]:
    """The server's values for a store connection to ``url``."""
    engine = make_engine(normalize_url(url))
    query = text("SELECT name, setting FROM pg_settings WHERE name IN :names")
    try:
        with engine.connect() as conn:
            found = conn.execute(
                query.bindparams(bindparam("names", expanding=True)), {"names": NAMES}
            )
            return {name: setting for name, setting in found}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_the_server_keeps_the_client_s_timeouts(servers: Servers) -> None:
    url = servers.admin_url("postgres")
    assert url.split("@")[1].startswith("127.0.0.1")  # TCP: a Unix socket has none
    assert session_settings(url) == dict(zip(NAMES, ("10", "5", "3", "20000"), strict=True))


@pytest.mark.postgres
def test_the_url_s_timeouts_are_the_server_s_too(servers: Servers) -> None:
    query = "keepalives_idle=2&keepalives_count=7&tcp_user_timeout=1500"
    url = f"{servers.admin_url('postgres')}?{query}"
    assert session_settings(url) == dict(zip(NAMES, ("2", "5", "7", "1500"), strict=True))


def test_keep_alives_turned_off_are_off_on_both_sides() -> None:
    url = normalize_url("postgresql://db/jobs?keepalives=0&keepalives_idle=5")
    assert server_network(url) == {"tcp_user_timeout": "20000"}


def test_a_value_libpq_would_refuse_is_not_sent_to_the_server() -> None:
    url = normalize_url("postgresql://db/jobs?tcp_user_timeout=soon")
    assert "tcp_user_timeout" not in server_network(url)
