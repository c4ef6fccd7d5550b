"""What the fault tests on a PostgreSQL cluster share (a module may define its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.databases import Servers

# Leases lapse and are renewed quickly: a lost worker's jobs come back within seconds.
CLUSTER_ENV = {"JOBYARD_LEASE_TIMEOUT": "3", "JOBYARD_HEARTBEAT_INTERVAL": "0.5"}


@pytest.fixture
def cluster(servers: Servers, tmp_path: Path) -> Iterator[Cluster]:
    """An API-only node on a database of its own, no worker yet."""
    with (
        servers.private_database("postgres") as url,
        Cluster(url, tmp_path, workers=0, env=CLUSTER_ENV) as running,
    ):
        yield running
