"""The competitors' app modules: each wraps :func:`bench.compare.body.noop` as its task.

The broker addresses come from the environment the harness sets
(``BENCH_REDIS_URL``, ``BENCH_PG_URL``), so the worker processes and the
harness's submitting side build the same app.
"""
