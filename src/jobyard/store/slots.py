"""The claim's side of cluster-wide ``max_running`` (see :mod:`jobyard.limits`).

When none of the first claimable jobs is of a limited scope (whatever limits are
stored for others), they are locked with ``FOR UPDATE SKIP LOCKED`` and taken:
concurrent claimers take disjoint sets and never wait. Otherwise a claim

1. counts the jobs holding slots, without a lock, to leave full scopes out;
2. peeks at the first claimable jobs, without a lock, to learn which limited
   scopes (queues, types) it may take from now;
3. locks those scopes' ``limits`` rows with a plain ``FOR UPDATE`` in key order
   (claimers into the same scope queue up there; the order rules out deadlocks)
   and counts again — now exactly, since a job only starts holding a slot
   through a claim, and every claim into these scopes waits for this lock;
4. locks candidates with ``SKIP LOCKED``, leaving out full scopes and the limited
   scopes it holds no lock on, and takes those that fit
   (:func:`jobyard.limits.pick`); again while some were turned away because a
   scope filled up on the way.

Jobs of unlimited scopes are claimed in the same pass, in the same priority order.
SQLite has no row locks; its claim holds the database's only write lock anyway.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Connection, Row, Select, func, or_, select

from jobyard.limits import Key, Scope, keys_of, pick
from jobyard.states import JobState
from jobyard.store import limits as limit_rows
from jobyard.store.tables import jobs, limits

HOLDING = [JobState.RUNNING.value, JobState.PAUSED.value]  # a paused job keeps its slot
PEEK_FACTOR = 4  # the peek looks this many times further than the claim wants…
PEEK_MIN = 32  # … and at least this far


def lock_claimable(
    conn: Connection, claimable: Select[Any], limit: int, caps: dict[Key, int]
) -> tuple[list[Row[Any]], bool]:
    """Lock up to ``limit`` rows of ``claimable`` (id, queue, type, …) that fit ``caps``,
    the limits read in this transaction (:func:`jobyard.store.limits.read`); and
    whether the first ``limit`` claimable jobs of the scopes not full include
    limited ones (then the next claim had better come this way at once).

    ``claimable`` is ordered by priority and age; the rows come back in that order.
    """
    held = _held(conn, caps)
    full = {key for key, count in held.items() if count >= caps[key]}
    peek = _excluding(claimable, full).limit(max(limit * PEEK_FACTOR, PEEK_MIN))
    limited = [[key for key in keys_of(row) if key in caps] for row in conn.execute(peek)]
    seen = {key for keys in limited for key in keys}
    free = _lock_scopes(conn, sorted(seen))
    met = any(limited[:limit])
    return _take(conn, claimable, limit, free, blocked=set(caps) - seen), met


def _lock_scopes(conn: Connection, keys: list[Key]) -> dict[Key, int]:
    """Lock the ``limits`` rows of ``keys``; the free slots of each, counted under the lock.

    A key whose row vanished meanwhile is no longer limited: it is left out.
    """
    if not keys:
        return {}
    query = (
        select(limits.c.scope, limits.c.name, limits.c.max_running)
        .where(limit_rows.matching(keys))
        .order_by(limits.c.scope, limits.c.name)
        .with_for_update()
    )
    caps = {(Scope(scope), name): int(n) for scope, name, n in conn.execute(query)}
    held = _held(conn, caps)
    return {key: cap - held.get(key, 0) for key, cap in caps.items()}


def _take(
    conn: Connection,
    claimable: Select[Any],
    limit: int,
    free: dict[Key, int],
    blocked: set[Key],
) -> list[Row[Any]]:
    taken: list[Row[Any]] = []
    while len(taken) < limit:
        blocked |= {key for key, slots in free.items() if slots <= 0}
        query = _excluding(claimable, blocked)
        if taken:
            query = query.where(jobs.c.id.not_in([row.id for row in taken]))
        rows = _lock(conn, query.limit(limit - len(taken)))
        fits = set(pick(rows, free))
        taken += [row for row in rows if row.id in fits]
        if len(fits) == len(rows):  # none turned away: enough, or nothing more to find
            break
    return taken


def _held(conn: Connection, caps: dict[Key, int]) -> Counter[Key]:
    """How many jobs hold a slot in each scope of ``caps``."""
    queues = [name for scope, name in caps if scope is Scope.QUEUE]
    types = [name for scope, name in caps if scope is Scope.TYPE]
    query = (
        select(jobs.c.queue, jobs.c.type, func.count())
        .where(jobs.c.state.in_(HOLDING), or_(jobs.c.queue.in_(queues), jobs.c.type.in_(types)))
        .group_by(jobs.c.queue, jobs.c.type)
    )
    held: Counter[Key] = Counter()
    for queue, type_, count in conn.execute(query):
        for key in ((Scope.QUEUE, queue), (Scope.TYPE, type_)):
            if key in caps:
                held[key] += int(count)
    return held


def _excluding(query: Select[Any], keys: set[Key]) -> Select[Any]:
    queues = sorted(name for scope, name in keys if scope is Scope.QUEUE)
    types = sorted(name for scope, name in keys if scope is Scope.TYPE)
    if queues:
        query = query.where(jobs.c.queue.not_in(queues))
    if types:
        query = query.where(jobs.c.type.not_in(types))
    return query


def _lock(conn: Connection, query: Select[Any]) -> list[Row[Any]]:
    return list(conn.execute(query.with_for_update(skip_locked=True)))
