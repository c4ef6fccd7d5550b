"""The live feed: one reader of the durable event log per API process, fanned out to streams.

Every event lives in the ``job_events`` table first; streams never get an event
that is not stored, so a reconnecting client (``Last-Event-ID``) can always be
given exactly what it missed. The :class:`Hub` tails the table from one thread
— woken by PostgreSQL ``NOTIFY``, or polling briefly on SQLite and MariaDB — and
hands each new event to the subscriptions that want it. With nobody
subscribed it reads nothing: the first subscriber gives it its place again
(the newest settled event, see :func:`~jobyard.events.gaps.settled`, or the newest
that retention removed if later). A subscriber reads
anything older than its subscription straight from the database, then takes
the live events; one that falls too far behind is dropped by the hub and
catches up from the database, so a slow client never slows the others or the
workers.

On servers, ids are handed out at insert but become visible at commit, so a
later id can show up before an earlier one. The hub delivers in id order and
waits (up to ``gap_grace``) for a missing id before it gives up on it (an
insert that was rolled back, or the events of a removed job, leave a gap for
ever); on PostgreSQL only until every transaction that could still commit it
has ended (:class:`~jobyard.events.gaps.GapWait`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from weakref import WeakKeyDictionary

from anyio import CapacityLimiter, move_on_after, to_thread

from jobyard.clock import utcnow
from jobyard.events.gaps import GapWait, settled
from jobyard.events.records import FeedEvent
from jobyard.store import Store

log = logging.getLogger(__name__)

Match = Callable[[FeedEvent], bool]
Prepare = Callable[[list[FeedEvent]], object] | None  # see history_batches
BATCH = 1000
SETTLED_AFTER = 120.0  # seconds after which a missing event id is taken for rolled back
LINGER = 30.0  # seconds the PostgreSQL listener stays after the last subscriber left


class Subscription:
    """Live events for one stream, pushed by the hub into the stream's event loop."""

    def __init__(self, match: Match, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.match = match
        self.position = 0  # events up to here are in the database; later ones come here
        self.overflowed = False
        self.queue: asyncio.Queue[FeedEvent | None] = asyncio.Queue()
        self._loop = loop
        self._limit = limit

    def offer(self, events: list[FeedEvent]) -> None:
        """From the hub thread: queue the events, or mark the subscription as behind."""
        self._loop.call_soon_threadsafe(self._put, events)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self.queue.put_nowait, None)

    def _put(self, events: list[FeedEvent]) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() + len(events) > self._limit:
            self.overflowed = True
            self.queue.put_nowait(None)  # wake the stream so it catches up
            return
        for event in events:
            self.queue.put_nowait(event)


class Hub:
    def __init__(
        self,
        store: Store,
        *,
        poll_interval: float | None = None,
        gap_grace: float = 3.0,
        queue_limit: int = 10_000,
        linger: float = LINGER,
    ) -> None:
        self.store = store
        self.poll_interval = poll_interval or _default_poll(store.dialect)
        self.gap_grace = gap_grace
        self.queue_limit = queue_limit
        self.position: int | None = None  # None: nobody listens, so nothing is read
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._gaps = self._gap_wait()
        self._threads: list[threading.Thread] = []
        self.demand = Demand(lambda: len(self._subscriptions), linger)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self._spawn(self._loop, "feed-hub")
        if self.store.dialect == "postgresql":
            from jobyard.events.listen import listen

            channel, demand = "jobyard_events", self.demand
            self._spawn(
                partial(listen, self.store, channel, self._notified, self._stop, wanted=demand),
                "feed-listen",
            )

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.set()
        self.demand.rise()  # the listener sees the stop at once
        with self._lock:
            for subscription in self._subscriptions:
                subscription.close()
            self._subscriptions.clear()
        for thread in self._threads:
            thread.join(timeout=5)

    def wake(self) -> None:
        self._wakeup.set()

    def _notified(self, payload: str | None) -> None:
        """A NOTIFY of a new event (its payload says nothing more), or a reconnection."""
        self.wake()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- subscriptions -----------------------------------------------------
    def prepare(self) -> int:
        """The hub's place, read first if nobody listens yet (blocking: call it off the loop).

        Every event up to it is stored and settled: a stream "from now" starts after it.
        """
        with self._lock:
            if self.position is None:
                self.position = self._settled_position()
            return self.position

    def subscribe(self, match: Match) -> Subscription:
        """A live subscription for the running event loop; :meth:`prepare` first."""
        subscription = Subscription(match, asyncio.get_running_loop(), self.queue_limit)
        with self._lock:
            if self.position is None:  # the hub went quiet since prepare(): rare, and short
                self.position = self._settled_position()
            subscription.position = self.position
            self._subscriptions.add(subscription)
        self.demand.rise()
        self.wake()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def _settled_position(self) -> int:
        latest = self.store.events.latest(BATCH)
        if self.store.dialect == "sqlite":  # one writer: ids commit in order
            found = latest[-1][0] if latest else 0
        else:
            # An event's time is when it happened, not when it committed (an end retried
            # through an outage, a worker's clock): only gaps well in the past are settled.
            before = utcnow() - timedelta(seconds=max(self.gap_grace, SETTLED_AFTER))
            found = settled(latest, before)
        # Ids retention removed never come back: a place below the newest would wait a
        # grace for them as for a transaction still committing (and events kept briefly
        # could be removed unseen meanwhile), as when retention emptied the log and the
        # place read was 0. They are settled: retention takes old events, none after a
        # durable reader's place.
        return max(found, self.store.retention.pruned_through())

    # -- the tailing thread ------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wakeup.clear()
            held_back = False
            if self._listened():
                try:
                    held_back = self._pump()
                except Exception:  # the database may be restarting; the next pass catches up
                    log.warning("event feed could not read the event log", exc_info=True)
            self._wakeup.wait(0.02 if held_back else self.poll_interval)

    def _listened(self) -> bool:
        """Whether anyone listens; when nobody does, the place is forgotten (read on demand)."""
        with self._lock:
            if not self._subscriptions:
                self.position = None
                self._gaps = self._gap_wait()
            return self.position is not None

    def _gap_wait(self) -> GapWait:
        return GapWait(self.gap_grace, transactions=self.store.events.transactions())

    def _pump(self) -> bool:
        """Deliver every new event in id order; True when waiting for a missing id."""
        while True:
            assert self.position is not None  # only this thread forgets it, between passes
            self._gaps.before_read()
            batch = self.store.events.feed(self.position, BATCH)
            ready = self._contiguous(batch)
            if ready:
                self._dispatch(ready)
            if len(ready) < len(batch):
                return True
            if len(batch) < BATCH:
                return False

    def _contiguous(self, batch: Sequence[FeedEvent]) -> list[FeedEvent]:
        assert self.position is not None
        upto = self._gaps.contiguous(self.position, [item.event.id for item in batch])
        return [item for item in batch if item.event.id <= upto]

    def _dispatch(self, events: list[FeedEvent]) -> None:
        with self._lock:
            self.position = events[-1].event.id
            dropped = []
            for subscription in self._subscriptions:
                wanted = [event for event in events if subscription.match(event)]
                if wanted:
                    subscription.offer(wanted)
                if subscription.overflowed:
                    dropped.append(subscription)
            for subscription in dropped:
                self._subscriptions.discard(subscription)


class Demand:
    """Whether the hub's PostgreSQL listener is wanted (:class:`~jobyard.events.listen.Wanted`).

    While anyone subscribes, and ``linger`` seconds after the last one left, so that
    pages opening and closing streams do not reconnect it each time. Without it, new
    events send no NOTIFY at all (migration 0014), which spares every listening
    backend of the database a transaction per event.
    """

    def __init__(self, subscribers: Callable[[], int], linger: float) -> None:
        self._subscribers = subscribers
        self._linger = linger
        self._risen = threading.Event()
        self._seen = 0.0  # when a subscriber was last seen

    def rise(self) -> None:
        self._risen.set()

    def wait(self, timeout: float) -> bool:
        if not self._risen.wait(timeout):
            return False
        self._seen = time.monotonic()
        return True

    def still(self) -> bool:
        now = time.monotonic()
        if self._subscribers():
            self._seen = now
            return True
        if now - self._seen < self._linger:
            return True
        self._risen.clear()
        if self._subscribers():  # subscribed meanwhile: its rise() may have come first
            self._risen.set()
            return True
        return False


@dataclass(frozen=True)
class Filter:
    """Which events a stream wants; the same test runs on history and live events."""

    kinds: Sequence[str] = ()
    job_id: int | None = None
    types: Sequence[str] = ()
    queues: Sequence[str] = ()
    workflow_run: int | None = None  # the events of this run's jobs (its own events too)

    def __call__(self, item: FeedEvent) -> bool:
        event = item.event
        return (
            (not self.kinds or event.kind in self.kinds)
            and (self.job_id is None or event.job_id == self.job_id)
            and (not self.types or item.type in self.types)
            and (not self.queues or item.queue in self.queues)
            and (self.workflow_run is None or item.workflow_run == self.workflow_run)
        )


Idle = float | Callable[[], float]
KEEPALIVE = 15.0  # seconds at most between two messages of a stream (a ping when idle)


async def follow(
    hub: Hub, wanted: Filter, after: int, *, idle: Idle = KEEPALIVE
) -> AsyncGenerator[FeedEvent | None, None]:
    """Every wanted event with id > ``after``, once each and in order, forever.

    Yields ``None`` after ``idle`` seconds without an event, so the caller can
    send a keep-alive and check on the stream. A callable ``idle`` is asked
    before each wait (how long until the caller's next check is due).
    """
    async with aclosing(follow_batches(hub, wanted, after, idle=idle)) as batches:
        async for batch in batches:
            if batch is None:
                yield None
                continue
            for item in batch:
                yield item


async def follow_batches(
    hub: Hub, wanted: Filter, after: int, *, idle: Idle = KEEPALIVE, prepare: Prepare = None
) -> AsyncGenerator[list[FeedEvent] | None, None]:
    """:func:`follow` a batch at a time: what one read of the history found, or every
    live event queued by then. A stream sends a batch as one write, not one per event:
    a stream catching up on a long log goes through the server's layers once a batch.
    ``prepare`` is as for :func:`history_batches`."""
    await to_thread.run_sync(hub.prepare)
    subscription = hub.subscribe(wanted)
    last = after
    try:
        while True:
            until = subscription.position
            read = history_batches(hub.store, wanted, last, until, prepare=prepare)
            async with aclosing(read) as old:
                async for batch in old:
                    yield batch
                    last = batch[-1].event.id
            last = max(last, subscription.position)
            async with aclosing(_live(subscription, idle)) as lives:
                async for live in lives:
                    if live is None:
                        yield None
                        continue
                    fresh = [item for item in live if item.event.id > last]
                    if fresh:
                        yield fresh
                        last = fresh[-1].event.id
            if hub.closed:
                return
            # Dropped for falling behind: take a new place and read the gap from the database.
            hub.unsubscribe(subscription)
            await to_thread.run_sync(hub.prepare)
            subscription = hub.subscribe(wanted)
    finally:
        hub.unsubscribe(subscription)


async def history_batches(
    store: Store, wanted: Filter, after: int, until: int, *, prepare: Prepare = None
) -> AsyncGenerator[list[FeedEvent], None]:
    """Stored events that ``wanted`` matches with ``after`` < id ≤ ``until``, a read
    (up to :data:`BATCH` events) at a time.

    A stream's first read goes at once; its next ones (a long history) share a few
    threads with every other stream's (:data:`CATCH_UP`): streams replaying long logs
    take turns, and leave the event loop (and every other request, and a stream that
    starts) the time they would take from it, fighting for the interpreter in as many
    threads.
    ``prepare`` runs on each batch in the thread that read it (a stream encodes its
    messages there, off the event loop).
    """
    limiter = None  # a stream's first read goes at once: only long replays take turns
    while after < until:
        read = partial(
            store.events.feed,
            after,
            BATCH,
            kinds=wanted.kinds,
            job_id=wanted.job_id,
            types=wanted.types,
            queues=wanted.queues,
            workflow_run=wanted.workflow_run,
        )
        batch = await to_thread.run_sync(_read, read, prepare, limiter=limiter)
        kept = [item for item in batch if item.event.id <= until]
        if kept:
            yield kept
            after = kept[-1].event.id
        if len(kept) < BATCH:
            return
        limiter = _catch_up()


def _read(read: Callable[[], list[FeedEvent]], prepare: Prepare) -> list[FeedEvent]:
    batch = read()
    if prepare is not None:
        prepare(batch)
    return batch


CATCH_UP = 2  # threads reading the history of streams at once, per event loop
_CATCH_UP: WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = WeakKeyDictionary()


def _catch_up() -> CapacityLimiter:
    """The running event loop's limiter of history reads (a limiter belongs to one loop)."""
    loop = asyncio.get_running_loop()
    limiter = _CATCH_UP.get(loop)
    if limiter is None:
        limiter = _CATCH_UP[loop] = CapacityLimiter(CATCH_UP)
    return limiter


async def _live(
    subscription: Subscription, idle: Idle
) -> AsyncGenerator[list[FeedEvent] | None, None]:
    """Live events (every one queued when the first came) until the subscription is
    dropped or closed; ``None`` when idle.

    The idle wait is an anyio scope, not ``asyncio.wait_for``: on Python 3.11,
    ``wait_for`` runs the ``get`` in a task of its own, and a stream cancelled
    (its client gone) while it waits there could stay stuck for ever, holding
    its subscription and every event queued for it.
    """
    queue = subscription.queue
    while True:
        with move_on_after(idle() if callable(idle) else idle) as waiting:
            item = await queue.get()
        if waiting.cancelled_caught:
            yield None
            continue
        if item is None:
            return
        batch = [item]
        while not queue.empty() and len(batch) < BATCH:
            more = queue.get_nowait()
            if more is None:  # dropped or closed: what came before it is sent first
                yield batch
                return
            batch.append(more)
        yield batch


def _default_poll(dialect: str) -> float:
    # PostgreSQL wakes the hub with NOTIFY; polling there is only a safety net.
    return {"sqlite": 0.05, "postgresql": 1.0}.get(dialect, 0.1)
