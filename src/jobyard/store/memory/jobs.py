"""Jobs, their events and their logs, in memory."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from jobyard.events.records import JobEvent, LogWritten, Record
from jobyard.models import (
    SORTABLE,
    Ended,
    Job,
    JobEnd,
    JobQuery,
    JobUpdate,
    NewJob,
    order_keys,
)
from jobyard.states import JobState
from jobyard.store.memory.tables import (
    Edge,
    Part,
    insert_job,
    job_values,
    new_job,
    stored,
    utc,
)
from jobyard.store.protocol import AuditOf, lapsed, noted
from jobyard.text import as_in_json, fold


class MemoryJobs(Part):
    """:class:`~jobyard.store.protocol.JobStore` in memory."""

    def add_jobs(
        self, new: Sequence[NewJob], now: datetime, *, audit: AuditOf | None = None
    ) -> list[tuple[Job, bool]]:
        now = utc(now)
        for job in new:  # all or nothing: refuse a naive time before storing any job
            utc(job.run_at)
        with self._t.lock:
            added = [self._add(job, now) for job in new]
            if audit:
                self._t.audit.extend(audit(added))
            return added

    def _add(self, new: NewJob, now: datetime) -> tuple[Job, bool]:
        t = self._t
        if new.idempotency_key is not None and new.idempotency_key in t.keys:
            return t.jobs[t.keys[new.idempotency_key]], False
        pending = sum(not dependency.met for dependency in new.depends_on)
        job = new_job(t.next_id("jobs"), new, now, deps_pending=pending)
        insert_job(t, job, new.state)
        for dependency in new.depends_on:
            t.edges[(job.id, dependency.upstream)] = Edge(dependency.condition, dependency.met)
        return job, True

    def get_job(self, job_id: int) -> Job | None:
        with self._t.lock:
            return self._t.jobs.get(job_id)

    def jobs_by_id(self, job_ids: Collection[int]) -> list[Job]:
        with self._t.lock:
            return [self._t.jobs[i] for i in job_ids if i in self._t.jobs]

    def job_states(self, job_ids: Collection[int], *, settled: bool = False) -> dict[int, JobState]:
        with self._t.lock:
            return {i: self._t.jobs[i].state for i in job_ids if i in self._t.jobs}

    def list_jobs(self, query: JobQuery) -> tuple[list[Job], int]:
        bad = [key for key in query.sort if key.removeprefix("-") not in SORTABLE]
        if bad or query.page < 1 or query.per_page < 1:
            raise ValueError(f"bad listing: sort {bad}, page {query.page}/{query.per_page}")
        with self._t.lock:
            found = self._t.where(lambda job: _matches(job, query))
        found = _sorted(found, query.sort)
        total = len(found)
        if query.after is not None:
            found = [job for job in found if _after(job, query.sort, query.after)]
        start = (query.page - 1) * query.per_page
        return found[start : start + query.per_page], total

    def update_job(self, update: JobUpdate, now: datetime) -> Job | None:
        values = job_values(update.values) | {"updated_at": utc(now)}
        with self._t.lock:
            job = self._t.jobs.get(update.job_id)
            if job is None or job.state not in update.expect:
                return None
            if update.unless_control is not None and job.control == update.unless_control:
                return None
            if update.clears is not None and job.control == update.clears:
                values["control"] = None
            if update.event is not None:
                self._t.add_event(job.id, update.event)
            return self._t.set(job.id, values)

    def delete_job(self, job_id: int, expect: frozenset[JobState]) -> bool:
        t = self._t
        with t.lock:
            job = t.jobs.get(job_id)
            if job is None or job.state not in expect:
                return False
            t.remove(job_id)
            t.events.pop(job_id, None)
            for key in [key for key in t.samples if key[0] == job_id]:
                del t.samples[key]
            t.keys.pop(job.idempotency_key or "", None)
            for edge in [edge for edge in t.edges if edge[0] == job_id]:
                del t.edges[edge]
            return True

    def append_output(
        self,
        job_id: int,
        logs: Sequence[LogWritten],
        events: Sequence[Record],
        values: dict[str, Any],
        *,
        worker: str | None = None,
        attempt: int | None = None,
    ) -> bool:
        columns = job_values(values)
        with self._t.lock:
            job = self._t.jobs.get(job_id)
            if (
                job is None
                or worker not in (None, job.worker)
                or attempt not in (None, job.attempt)
            ):
                return False
            for record in [*logs, *events]:
                self._t.add_event(job_id, record)
            if columns:
                self._t.set(job_id, columns)
            return True

    def end_jobs(self, ends: Sequence[JobEnd], now: datetime) -> list[Ended | None]:
        now = utc(now)
        # All or nothing, as one transaction: what can refuse an end (its values, its
        # records' payloads) is checked for every end before any is written.
        # Each update an end may write (its own, the killed one, the paused one) is checked.
        written = [
            {
                id(update): (job_values(end.values | update.values), _records(end, update))
                for update in end.choices
            }
            for end in ends
        ]
        with self._t.lock:
            ended = [self._end(end, each, now) for end, each in zip(ends, written, strict=True)]
            awaited = {up for (_, up), edge in self._t.edges.items() if not edge.met}
            return [Ended(job, job.id in awaited) if job else None for job in ended]

    def _end(
        self,
        end: JobEnd,
        written: dict[int, tuple[dict[str, Any], list[Record]]],
        now: datetime,
    ) -> Job | None:
        job = self._t.jobs.get(end.update.job_id)
        if job is None or (job.worker, job.attempt) != (end.worker, end.attempt):
            return None
        if job.state not in end.update.expect or not lapsed(job, end):
            return None
        update = end.update_for(job)
        values, records = written[id(update)]
        last = len(records) - (update.event is not None)  # the note goes before the end's
        if end.note is not None:
            note = noted(job, end.note, now)
            records = [*records[:last], stored(note), *records[last:]]
            values = values | {"log_lines": note.seq}
        for record in records:
            self._t.add_stored(job.id, record)
        return self._t.set(job.id, values | {"updated_at": now})

    def restart_job(
        self, old_id: int, new: NewJob, now: datetime, records: Sequence[Record] = ()
    ) -> tuple[Job, bool] | None:
        with self._t.lock:
            old = self._t.jobs.get(old_id)
            if old is None:
                return None
            if old.restarted_as is not None or not old.state.terminal:
                return old, False
            job, _ = self._add(new, utc(now))
            for record in records:
                self._t.add_stored(job.id, record)
            self._t.set(old_id, {"restarted_as": job.id, "updated_at": utc(now)})
            return job, True

    def trim_log(self, job_id: int, marker_seq: int, upto_seq: int, marker: str) -> int:
        with self._t.lock:
            events = self._t.events.get(job_id, [])
            kept = [e for e in events if not marker_seq < _seq(e) <= upto_seq]
            self._t.events[job_id] = [
                dataclasses.replace(e, record=dataclasses.replace(e.record, line=marker))
                if isinstance(e.record, LogWritten) and e.record.seq == marker_seq
                else e
                for e in kept
            ]
            return len(events) - len(kept)

    def job_events(self, job_id: int, after_id: int = 0, limit: int = 1000) -> list[JobEvent]:
        with self._t.lock:
            return [e for e in self._t.events.get(job_id, []) if e.id > after_id][:limit]

    def log_lines(self, job_id: int, after_seq: int = 0, limit: int = 1000) -> list[LogWritten]:
        with self._t.lock:
            events = self._t.events.get(job_id, [])
            lines = [e.record for e in events if isinstance(e.record, LogWritten)]
        return sorted((line for line in lines if line.seq > after_seq), key=lambda x: x.seq)[:limit]


def _records(end: JobEnd, update: JobUpdate) -> list[Record]:
    """What ``end`` adds to the job's events with ``update``, in their order, as stored."""
    final = [] if update.event is None else [update.event]
    return [stored(record) for record in [*end.logs, *end.events, *final]]


def _matches(job: Job, query: JobQuery) -> bool:
    if query.states and job.state not in {JobState(s) for s in query.states}:
        return False
    if (
        (query.types and job.type not in query.types)
        or (query.queues and job.queue not in query.queues)
        or (query.workers and job.worker not in query.workers)
        or (query.since is not None and job.created_at < utc(query.since))
        or (query.until is not None and job.created_at >= utc(query.until))
    ):
        return False
    if not query.search:
        return True
    args = fold(json.dumps(job.args, ensure_ascii=False))
    term = fold(query.search)
    return term in fold(job.type) or term in fold(job.name or "") or fold(as_in_json(term)) in args


def _sorted(found: list[Job], sort: Sequence[str]) -> list[Job]:
    """In ``sort`` order, nulls as if larger than any value, ties broken by id."""
    for item in reversed(order_keys(sort)):  # stable sorts, the last key first
        name = item.removeprefix("-")
        found = sorted(found, key=_sort_key(name), reverse=item.startswith("-"))
    return found


def _sort_key(name: str) -> Callable[[Job], tuple[bool, Any]]:
    def key(job: Job) -> tuple[bool, Any]:
        return _null_last(getattr(job, name))

    return key


def _null_last(value: Any) -> tuple[bool, Any]:
    return (value is None, 0 if value is None else value)


def _after(job: Job, sort: Sequence[str], values: Sequence[Any]) -> bool:
    """Whether ``job`` comes after a job with these ``values`` of ``order_keys(sort)``."""
    for key, value in zip(order_keys(sort), values, strict=True):
        mine, theirs = _null_last(getattr(job, key.removeprefix("-"))), _null_last(value)
        if mine != theirs:
            return bool(mine < theirs if key.startswith("-") else mine > theirs)
    return False


def _seq(event: JobEvent) -> int:
    """A log line's seq; 0 for any other event."""
    return event.record.seq if isinstance(event.record, LogWritten) else 0
