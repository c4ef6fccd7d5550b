"""Retention in memory: the same batches as the SQL store's (no notifications, audit or
schedule fires here)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from jobyard.events.records import JobEvent, LogWritten
from jobyard.models import Job, RunState, WorkflowRun
from jobyard.store.memory.tables import Part, utc
from jobyard.store.protocol import Pruned

_MARKS = {"logs": "logs_pruned_at", "events": "events_pruned_at"}


class MemoryRetention(Part):
    """:class:`~jobyard.store.protocol.RetentionStore` in memory."""

    pruned_upto = 0

    def prune_jobs(self, before: datetime, limit: int, now: datetime) -> Pruned:
        t = self._t
        with t.lock:
            ids = [job.id for job in t.where(self._removable(utc(before)))][:limit]
            if not ids:
                return Pruned()
            events = self._drop_events(ids, lambda _: True, limit)
            if events:
                return Pruned(0, events, True)
            owned = 0
            for job_id in ids:
                job = t.remove(job_id)
                t.events.pop(job_id, None)
                t.keys.pop(job.idempotency_key or "", None)
                for key in [key for key in t.samples if key[0] == job_id]:
                    owned += len(t.samples.pop(key))
                for edge in [edge for edge in t.edges if edge[0] == job_id]:
                    del t.edges[edge]
                    owned += 1
            return Pruned(len(ids), owned, True)

    def prune_logs(self, before: datetime, limit: int, now: datetime) -> Pruned:
        return self._prune_of_jobs("logs", lambda log: log, before, limit, now)

    def prune_events(self, before: datetime, limit: int, now: datetime) -> Pruned:
        return self._prune_of_jobs("events", lambda log: not log, before, limit, now)

    def prune_samples(self, before: datetime, limit: int, now: datetime) -> Pruned:
        t = self._t
        removed = 0
        with t.lock:
            old = {job.id for job in t.where(_old(utc(before)))}
            for key in [key for key in t.samples if key[0] in old]:
                rows = t.samples[key]
                taken = rows[: limit - removed]
                t.samples[key] = rows[len(taken) :]
                removed += len(taken)
                if not t.samples[key]:
                    del t.samples[key]
                if removed == limit:
                    break
        return Pruned(removed, 0, removed == limit)

    def prune_notifications(self, before: datetime, limit: int, now: datetime) -> Pruned:
        return Pruned()  # the memory store keeps no notifications

    def prune_audit(self, before: datetime, limit: int, now: datetime) -> Pruned:
        return Pruned()  # … and no audit log

    def prune_runs(self, before: datetime, limit: int, now: datetime) -> Pruned:
        t = self._t
        with t.lock:
            ids = sorted(run.id for run in self._old_runs(utc(before)))[:limit]
            for run_id in ids:
                del t.runs[run_id]
        return Pruned(len(ids), 0, len(ids) == limit)

    def prune_fires(self, before: datetime, limit: int, now: datetime) -> Pruned:
        return Pruned()  # … and no schedule fires

    def prunable(self, kind: str, before: datetime) -> int:
        t, before = self._t, utc(before)
        with t.lock:
            if kind == "jobs":
                return len(t.where(self._removable(before)))
            old = [job.id for job in t.where(_old(before))]
            if kind in _MARKS:
                logs = kind == "logs"
                events = [e for i in old for e in t.events.get(i, [])]
                return sum(isinstance(e.record, LogWritten) == logs for e in events)
            if kind == "samples":
                return sum(len(rows) for key, rows in t.samples.items() if key[0] in old)
            if kind == "runs":
                return len(self._old_runs(before))
            if kind in ("notifications", "audit", "fires"):
                return 0
        raise ValueError(f"unknown kind of rows {kind!r}")

    def pruned_through(self) -> int:
        with self._t.lock:
            return self.pruned_upto

    def _old_runs(self, before: datetime) -> list[WorkflowRun]:
        """Runs that ended before ``before`` and have no job left (call under the lock)."""
        t = self._t
        with_jobs = {job.workflow_run for job in t.jobs.values()}
        return [
            run
            for run in t.runs.values()
            if run.state is not RunState.RUNNING
            and run.finished_at is not None
            and run.finished_at < before
            and run.id not in with_jobs
        ]

    def _removable(self, before: datetime) -> Callable[[Job], bool]:
        t = self._t
        awaited = {up for (_, up), edge in t.edges.items() if not edge.met}
        running = {run.id for run in t.runs.values() if run.state is RunState.RUNNING}
        old = _old(before)
        return lambda job: old(job) and job.id not in awaited and job.workflow_run not in running

    def _prune_of_jobs(
        self,
        kind: str,
        wanted: Callable[[bool], bool],
        before: datetime,
        limit: int,
        now: datetime,
    ) -> Pruned:
        t, mark = self._t, _MARKS[kind]
        with t.lock:
            old = _old(utc(before))
            ids = [job.id for job in t.where(lambda j: old(j) and getattr(j, mark) is None)]
            ids = ids[:limit]

            def chosen(event: JobEvent) -> bool:
                return wanted(isinstance(event.record, LogWritten))

            removed = self._drop_events(ids, chosen, limit)
            done = [i for i in ids if not any(chosen(e) for e in t.events.get(i, []))]
            for job_id in done:
                t.set(job_id, {mark: utc(now)})
            return Pruned(removed, len(done), bool(removed or done))

    def _drop_events(self, ids: list[int], chosen: Callable[[JobEvent], bool], limit: int) -> int:
        t, removed = self._t, 0
        for job_id in ids:
            events = t.events.get(job_id, [])
            gone = [e for e in events if chosen(e)][: limit - removed]
            if gone:
                ids_gone = {e.id for e in gone}
                t.events[job_id] = [e for e in events if e.id not in ids_gone]
                self.pruned_upto = max(self.pruned_upto, *ids_gone)
                removed += len(gone)
            if removed == limit:
                break
        return removed


def _old(before: datetime) -> Callable[[Job], bool]:
    return lambda job: (
        job.state.terminal and job.finished_at is not None and job.finished_at < before
    )
