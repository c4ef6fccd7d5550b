"""Celery on Redis; results ignored (nothing reads them)."""

from __future__ import annotations

import os

from celery import Celery

from bench.compare import body

app = Celery("bench", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1"))
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False)
noop = app.task(name="bench.noop")(body.noop)
