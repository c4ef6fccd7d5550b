"""The end writer through an outage: a database that refuses every connection.

The worker's loop must not try each end on its own while the database is away
(each try may wait for a timeout): the batch is tried twice, then every end goes
back to its run, which keeps trying on its own thread. The store is a real
PostgreSQL store whose server port refuses connections; the tries are counted
around its methods.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from jobyard.models import JobEnd, JobUpdate
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.protocol import ClaimOrder
from jobyard.worker.ends import Stalled
from tests.unit.test_end_writer import NOW, RUNNING, _handed_in, _writer


def test_an_outage_hands_every_end_back_to_its_run_after_a_second_try() -> None:
    """Not one try per end: the worker's loop must get back to its heartbeats."""
    store = Store("postgresql://jobyard@127.0.0.1:1/none")  # refuses every connection
    tries: list[int] = []
    for part, verb in ((store.queue, "end_and_claim"), (store.jobs, "end_jobs")):
        original = getattr(part, verb)

        def counted(
            ends: list[JobEnd], *args: Any, _original: Any = original, **options: Any
        ) -> Any:
            tries.append(len(ends))
            return _original(ends, *args, **options)

        setattr(part, verb, counted)
    writer, woken = _writer(store)
    ends = [
        JobEnd(JobUpdate(job_id, RUNNING, {"state": JobState.SUCCEEDED}), "w1", 1)
        for job_id in range(1, 6)
    ]
    order = ClaimOrder("w1", "host", None, 5, NOW + timedelta(1))
    for flush in (partial(writer.flush, order=order), writer.flush):
        tries.clear()
        outcome, join = _handed_in(writer, ends, woken)
        with pytest.raises(OperationalError):
            flush(writer.take())
        join()
        assert tries == [5, 5]
        assert all(isinstance(outcome[end.update.job_id], Stalled) for end in ends)
    store.close()
