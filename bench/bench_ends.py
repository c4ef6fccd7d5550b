"""What storing the ends of jobs costs the store, per end, on SQLite.

    .venv/bin/python bench/bench_ends.py BATCH [ROUNDS]

Adds jobs, then ROUNDS times claims BATCH of them and ends them together through
``store.jobs.end_jobs`` (as the worker's loop does when several end at once), after
50 rounds of warm-up. Prints the CPU per end. For a figure the machine's load does not
change, count instructions instead: run it under ``valgrind --tool=callgrind`` with
ROUNDS and with 0, and divide the difference by ROUNDS times BATCH.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta

from jobyard import outcomes
from jobyard.clock import utcnow
from jobyard.models import JobEnd, JobSpec, NewJob
from jobyard.states import JobState
from jobyard.store import Store

LEASE = timedelta(minutes=1)
WARMUP = 50


def main() -> None:
    batch = int(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    store = Store(f"sqlite:///{tempfile.mkdtemp()}/ends.db")
    store.migrate()
    new = NewJob("noop", {}, JobSpec(python="noop:noop"), "default", 0, JobState.QUEUED)
    store.jobs.add_jobs([new] * (batch * (rounds + WARMUP)), utcnow())
    cpu = 0.0
    for done in range(rounds + WARMUP):
        now = utcnow()
        claimed = store.queue.claim_jobs("w", "h", None, batch, now, now + LEASE).jobs
        ran = outcomes.RunEnd(succeeded=True, exit_code=0)
        ends = [JobEnd(outcomes.finished(job, ran, now), "w", job.attempt) for job in claimed]
        started = time.process_time()
        store.jobs.end_jobs(ends, utcnow())
        if done >= WARMUP:
            cpu += time.process_time() - started
    store.close()
    if rounds:
        print(f"batch {batch}: {1e6 * cpu / (rounds * batch):.1f} µs of CPU per end")


if __name__ == "__main__":
    main()
