"""Scale-out: one API-only node and three ``jobyard worker`` processes on one server database.

Each test runs on PostgreSQL (claims woken by NOTIFY) and MariaDB (polling).
Every assertion about who ran what comes from the stored history: the jobs'
rows and their ``state`` events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from jobyard.clock import utcnow
from tests.cluster import Cluster, StateEvent, most_at_once, parse_time, state_events
from tests.databases import Servers
from tests.harness import wait_for

pytestmark = pytest.mark.slow

CONCURRENCY = 4
CLAIM_SKEW = timedelta(seconds=0.5)
FAST_LEASES = {"JOBYARD_LEASE_TIMEOUT": "3", "JOBYARD_HEARTBEAT_INTERVAL": "0.5"}


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def server_url(request: pytest.FixtureRequest, servers: Servers) -> str:
    """A clean, migrated database on each server backend (SQLite is one machine's file)."""
    return servers.migrated_url(request.param)


@pytest.fixture
def cluster(server_url: str, tmp_path: Path) -> Iterator[Cluster]:
    """One API-only node and three workers; leases of 3 s renewed every 0.5 s; 1 s drains."""
    with Cluster(
        server_url,
        tmp_path,
        workers=3,
        concurrency=CONCURRENCY,
        env=FAST_LEASES,
        worker_args=["--drain-timeout", "1"],
    ) as cluster:
        yield cluster


def all_ended(cluster: Cluster, total: int, type_: str) -> bool:
    return cluster.count(type=type_, state="succeeded,failed,killed") >= total


def attempts(
    events: list[StateEvent], cut: dict[str, datetime]
) -> list[tuple[str, datetime, datetime]]:
    """``(worker, start, end)`` of each attempt: from a claim to the state event that ends it.

    A worker in ``cut`` was killed at that time: its attempts end there at the latest.
    """
    spans = []
    for index, event in enumerate(events):
        if not event.claim:
            continue
        worker = event.data["worker"]
        ends = [e.at for e in events[index + 1 :] if e.state not in ("running", "paused")]
        end = min([*ends[:1], cut.get(worker, datetime.max.replace(tzinfo=UTC))])
        spans.append((worker, event.at, end))
    return spans


def slots_held_at_once(events: dict[int, list[StateEvent]]) -> int:
    """The most jobs holding a slot at once, in event-id order.

    A job holds its slot from its claim to its next state that is neither
    running nor paused. Ids are handed out at insert, and a claim counts the
    slots only after the ends it sees were committed, so this order is exact.
    """
    edges = []
    for history in events.values():
        for index, event in enumerate(history):
            if not event.claim:
                continue
            edges.append((event.id, 1))
            ends = [e.id for e in history[index + 1 :] if e.state not in ("running", "paused")]
            edges += [(ends[0], -1)] if ends else []
    held = peak = 0
    for _, step in sorted(edges):
        held += step
        peak = max(peak, held)
    return peak


def test_two_thousand_jobs_run_exactly_once_within_the_limits(cluster: Cluster) -> None:
    # Beside the flood, jobs under cluster-wide limits (jobyard.yaml): the queue
    # `limited` has max_running 2, the type `capped` max_running 1.
    limited = [{"type": "nap", "queue": "limited", "args": {"seconds": 1}}] * 8
    capped = [{"type": "capped", "args": {"seconds": 0.5}}] * 4
    limited_ids = {"nap": cluster.submit_batch(limited), "capped": cluster.submit_batch(capped)}
    ids = cluster.submit_batch([{"type": "noop"}] * 2000)
    assert len(set(ids)) == 2000
    # Polled slowly: the API node shares the two cores with the workers.
    wait_for(lambda: all_ended(cluster, 2000, "noop"), 300, 0.5, what="2,000 jobs to end")

    jobs = cluster.jobs(type="noop")
    events = state_events(cluster.store, ids)
    assert len(jobs) == 2000
    assert Counter(job["state"] for job in jobs) == {"succeeded": 2000}
    assert {job["attempt"] for job in jobs} == {1}
    for job in jobs:
        claims = [event for event in events[job["id"]] if event.claim]
        assert len(claims) == 1, (job["id"], events[job["id"]])
        assert claims[0].data["worker"] == job["worker"]
        assert [event.state for event in events[job["id"]]] == ["queued", "running", "succeeded"]
    spread = Counter(job["worker"] for job in jobs)
    assert set(spread) == {"worker-1", "worker-2", "worker-3"}, spread
    assert min(spread.values()) >= 100, spread  # every worker took a real share
    for worker in spread:  # and never ran more than its concurrency at once
        spans = [
            (span[1], span[2])
            for job in jobs
            for span in attempts(events[job["id"]], {})
            if span[0] == worker
        ]
        assert most_at_once(spans) <= CONCURRENCY

    ended = lambda: all_ended(cluster, 8, "nap") and all_ended(cluster, 4, "capped")  # noqa: E731
    wait_for(ended, timeout=120, what="the limited jobs to end")
    for type_, limit in (("nap", 2), ("capped", 1)):
        runs = cluster.jobs(type=type_)
        assert {job["state"] for job in runs} == {"succeeded"}
        # Exact, in the database's order: reached, never passed.
        assert slots_held_at_once(state_events(cluster.store, limited_ids[type_])) == limit
        # From the recorded times: a claim stamps started_at before it counts the
        # slots (and may wait for the scope's lock), so a start may precede the end
        # that freed its slot by that long; beyond it, no overlap.
        times = [(parse_time(job["started_at"]), parse_time(job["finished_at"])) for job in runs]
        assert most_at_once([(min(a + CLAIM_SKEW, b), b) for a, b in times]) <= limit


def test_a_worker_killed_with_9_loses_no_job(cluster: Cluster) -> None:
    total = 48  # four rounds of 1.5 s naps on twelve slots
    ids = cluster.submit_batch([{"type": "nap", "args": {"seconds": 1.5}}] * total)
    victim = cluster.procs[1]

    def victim_busy() -> bool:
        """A round done, and the victim started a nap less than half a second ago."""
        if cluster.count(type="nap", state="succeeded") < 8:
            return False
        recent = utcnow() - timedelta(seconds=0.5)
        running = cluster.jobs(type="nap", state="running")
        return any(
            job["worker"] == victim.name and parse_time(job["started_at"]) > recent
            for job in running
        )

    wait_for(victim_busy, timeout=120, what="the victim in the middle of the batch")
    killed_at = utcnow()
    victim.kill()
    wait_for(lambda: all_ended(cluster, total, "nap"), 180, 0.25, what="every nap to end")

    jobs = {job["id"]: job for job in cluster.jobs(type="nap")}
    events = state_events(cluster.store, ids)
    assert Counter(job["state"] for job in jobs.values()) == {"succeeded": total}, cluster.logs()
    lost = []
    for job_id, job in jobs.items():
        history = events[job_id]
        claims = [event for event in history if event.claim]
        if len(claims) == 1:  # ran once, wherever it ran
            assert job["attempt"] == 1
            continue
        # Taken by the victim, recovered when its lease expired, run again elsewhere.
        lost.append(job_id)
        assert len(claims) == 2, history
        assert claims[0].data["worker"] == victim.name
        recovered = history[history.index(claims[0]) + 1]
        assert recovered.state in ("scheduled", "queued")
        assert recovered.data["reason"] == "worker_lost"
        assert claims[1].data["worker"] != victim.name
        assert claims[1].at >= killed_at
        assert job["attempt"] == 2
        assert job["worker"] == claims[1].data["worker"]
    assert lost, "the victim held no job when it was killed"
    # No job was ever on two workers at overlapping times while both were alive.
    for job_id in jobs:
        spans = sorted(attempts(events[job_id], {victim.name: killed_at}), key=lambda s: s[1])
        for before, after in pairwise(spans):
            assert before[2] <= after[1], (job_id, spans)


def test_a_drained_worker_hands_its_jobs_back(cluster: Cluster, tmp_path: Path) -> None:
    gate = tmp_path / "gate"  # the jobs wait until the test creates it
    ids = cluster.submit_batch([{"type": "gate", "args": {"path": str(gate)}}] * 6)
    wait_for(lambda: cluster.count(type="gate", state="running") == 6, timeout=60, what="6 running")
    holders = Counter(job["worker"] for job in cluster.jobs(type="gate"))
    name, held = holders.most_common(1)[0]
    drained = next(worker for worker in cluster.procs if worker.name == name)
    mine = [job["id"] for job in cluster.jobs(type="gate") if job["worker"] == name]

    assert drained.terminate(timeout=90) == 0, drained.log()

    def back_elsewhere() -> bool:
        jobs = cluster.jobs(type="gate", state="running")
        return len(jobs) == 6 and all(job["worker"] != name for job in jobs)

    wait_for(back_elsewhere, timeout=60, what="the handed-back jobs to run on the others")
    gate.touch()
    wait_for(lambda: all_ended(cluster, 6, "gate"), timeout=60, what="every gated job to end")

    jobs = {job["id"]: job for job in cluster.jobs(type="gate")}
    events = state_events(cluster.store, ids)
    assert Counter(job["state"] for job in jobs.values()) == {"succeeded": 6}
    assert held == len(mine) >= 2
    for job_id, job in jobs.items():
        history = events[job_id]
        if job_id not in mine:
            assert job["attempt"] == 1
            continue
        assert job["attempt"] == 1  # a hand-back costs the job no attempt
        assert job["worker"] != name
        assert [event.state for event in history] == [
            "queued", "running", "queued", "running", "succeeded"
        ]  # fmt: skip
        assert history[1].data["worker"] == name
        assert history[2].data["event"] == "handed_back"
        assert history[2].data["worker"] == name
        assert history[3].data["worker"] not in (None, name)
        assert history[3].data["attempt"] == 1
        lines = [line["line"] for line in cluster.api.logs(job_id)]
        assert any(line.startswith(f"handed back: worker {name}") for line in lines), lines
        assert lines[-1] == "through"
