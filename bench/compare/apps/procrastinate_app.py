"""Procrastinate on PostgreSQL."""

from __future__ import annotations

import os

import procrastinate

from bench.compare import body

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_PG_URL", "")),
)
noop = app.task(name="noop")(body.noop)
