"""Huey on Redis; results off (nothing reads them)."""

from __future__ import annotations

import os

from huey import RedisHuey

from bench.compare import body

url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
huey = RedisHuey("bench", results=False, url=url)
noop = huey.task(name="noop")(body.noop)
