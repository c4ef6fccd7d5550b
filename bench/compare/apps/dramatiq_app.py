"""Dramatiq on Redis."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.compare import body

broker = RedisBroker(url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"))
dramatiq.set_broker(broker)
noop = dramatiq.actor(actor_name="noop", max_retries=0)(body.noop)
