"""Server-Sent Events: one job's events, its log lines, one workflow run's changes, and
every job's state changes.

Each message carries the stored event's id (``id:``), so a client that
reconnects with ``Last-Event-ID`` (or ``?after=``) gets exactly what it missed.
A job's stream ends with a ``close`` event once the job is terminal and every
earlier event was sent, a run's once the run is no longer running; idle
streams get a keep-alive comment every few seconds.
Every stream checks its caller's credentials again at each keep-alive, and at
least every ``stream_recheck`` seconds, and ends with a ``denied`` event once
they no longer allow it (:mod:`jobyard.api.recheck`).
A stream asked to resume before events that retention has removed starts with
a ``reset`` event instead: the client's copy is stale and must be reloaded
(docs/api.md).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from contextlib import aclosing
from typing import Annotated, Any, Literal, TypeVar
from weakref import WeakKeyDictionary

from anyio import CancelScope, to_thread
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.sse import format_sse_event
from starlette.types import Receive, Scope, Send

from jobyard.api.params import EventAfter, JobFilter, JobId, RunId
from jobyard.api.recheck import Recheck
from jobyard.api.resources import get_node
from jobyard.errors import JobyardError, NotFound
from jobyard.events.hub import (
    KEEPALIVE,
    Filter,
    Idle,
    Prepare,
    follow_batches,
    history_batches,
)
from jobyard.events.records import FeedEvent, JobTerminated, LogWritten, WorkflowRunFinished
from jobyard.models import EventKind, Job, RunState
from jobyard.node import Node
from jobyard.storable import INT64_MAX
from jobyard.store.outage import unavailable

T = TypeVar("T")
log = logging.getLogger(__name__)
router = APIRouter(tags=["events"])
PING = b": ping\n\n"
NodeDep = Annotated[Node, Depends(get_node)]
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "a stream of events"}
}


class BadEventId(JobyardError):
    status = 400
    title = "Bad request"


def header_resume(
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> int | None:
    """The event id in a ``Last-Event-ID`` header; 400 when it is not one.

    An event id is ASCII digits that fit in 64 bits (``str.isdigit`` alone would
    take other scripts' digits and superscripts, and any number of them).
    """
    if last_event_id is None:
        return None
    value = last_event_id.strip()
    event_id = _event_id(value)
    if event_id is None:
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise BadEventId(f"Last-Event-ID must be an event id (a number), not {shown!r}")
    return event_id


def _event_id(value: str) -> int | None:
    digits = value.lstrip("0") or "0"
    if not (value.isascii() and value.isdigit() and len(digits) <= len(str(INT64_MAX))):
        return None
    number = int(digits)
    return number if number <= INT64_MAX else None


def given_resume(
    header: Annotated[int | None, Depends(header_resume)],
    after: EventAfter = None,
) -> int | None:
    """Where the client asks a stream to resume: the ``Last-Event-ID`` header, else ``?after=``."""
    return header if header is not None else after


def resume_point(given: Annotated[int | None, Depends(given_resume)]) -> int:
    """Where a stream resumes: as the client asks, else from the first event."""
    return given or 0


Resume = Annotated[int, Depends(resume_point)]
GivenResume = Annotated[int | None, Depends(given_resume)]
HeaderResume = Annotated[int | None, Depends(header_resume)]
Start = Annotated[
    Literal["start", "now"],
    Query(
        alias="from",
        description="without `Last-Event-ID` or `after`: replay from the first event "
        "(`start`), or send only what comes next (`now`)",
    ),
]


class EventStream(StreamingResponse):
    """An SSE response that closes its generator as soon as the response ends.

    When the client goes away, Starlette cancels the send that was waiting and
    leaves the generator suspended at its ``yield``: its ``finally`` (which
    gives the hub subscription back) would only run when the garbage collector
    reaches it, and until then the hub keeps queueing events for nobody.
    """

    def __init__(self, messages: AsyncGenerator[bytes, None], status_code: int = 200) -> None:
        super().__init__(
            messages,
            status_code=status_code,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.messages = messages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with CancelScope(shield=True):  # also when the server cancels it on shutdown
                await self.messages.aclose()


Messages = Callable[[Idle], AsyncGenerator[bytes, None]]


def event_stream(
    request: Request, node: Node, messages: Messages, status: int = 200
) -> EventStream:
    """The stream answering ``request``: ``messages(idle)`` while its caller may read them.

    ``idle`` says how long the messages may wait for an event before a ping: at
    most until the caller's credentials are due to be checked again.
    """
    recheck = Recheck.of(request, node.settings.stream_recheck)
    idle = messages(lambda: min(KEEPALIVE, recheck.until_due()))
    return EventStream(guarded(idle, recheck), status)


async def guarded(
    messages: AsyncGenerator[bytes, None], recheck: Recheck
) -> AsyncGenerator[bytes, None]:
    """``messages`` until the caller's credentials no longer allow them, then ``denied``.

    Checked at each ping (an idle stream pings when a check is due) and, between
    events, once due: one check per interval, not one per event.

    A stream whose read finds the database away ends, as a whole message: the client
    reconnects from its last event (and gets 503 until the database is back). A started
    answer cannot become a 503, and an error out of it would cut it mid-chunk.
    """
    try:
        async with aclosing(messages):
            async for message in messages:
                due = message is PING or recheck.due()
                if due and (refused := await recheck.refusal()) is not None:
                    yield denied_message(refused)
                    return
                yield message
    except Exception as exc:
        if not unavailable(exc):
            raise
        log.warning("event stream ended: the database is unavailable", extra={"error": str(exc)})


class _Encoded:
    """The bytes of the latest events' messages, by stream kind and event id.

    Every follower of a stream sends the same bytes for an event: encoding it once,
    not once per follower, keeps a hundred followers from costing a hundred encodings
    of each event. Filled from the event loop, and ahead of it by the threads that read
    a stream's history (:meth:`ahead`), so that the loop finds a long replay encoded.
    """

    def __init__(self, size: int = 4096, max_bytes: int = 16 * 2**20) -> None:
        self._size = size
        self._max_bytes = max_bytes  # long log lines: a few thousand can be large
        self._held = 0
        self._bytes: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, stream: str, event_id: int, encode: Callable[[], bytes]) -> bytes:
        key = (stream, event_id)
        with self._lock:
            found = self._bytes.get(key)
        if found is not None:
            return found
        found = encode()
        with self._lock:
            if key not in self._bytes:
                self._bytes[key] = found
                self._held += len(found)
            while self._bytes and (len(self._bytes) > self._size or self._held > self._max_bytes):
                self._held -= len(self._bytes.popitem(last=False)[1])
        return found

    def ahead(self, message: Callable[[FeedEvent, _Encoded], bytes]) -> Prepare:
        """What encodes a batch of history with ``message`` as it is read (in its thread)."""

        def prepare(batch: list[FeedEvent]) -> None:
            for item in batch:
                message(item, self)

        return prepare


_ENCODED: WeakKeyDictionary[Node, _Encoded] = WeakKeyDictionary()


def encoded(node: Node) -> _Encoded:
    """The node's encoded messages (event ids are unique within one node's database)."""
    found = _ENCODED.get(node)
    if found is None:
        found = _ENCODED[node] = _Encoded()
    return found


def job_message(item: FeedEvent, cache: _Encoded) -> bytes:
    """On a job's own stream an event is named by its kind."""
    event = item.event
    return cache.get("job", event.id, lambda: _message(event.kind, event.id, event.marshal()))


CHUNK = 64 * 2**10  # bytes of messages a stream writes at once, at most (but for one)


def chunked(messages: Iterable[bytes]) -> Iterator[bytes]:
    """``messages`` joined into writes of about :data:`CHUNK` bytes: a batch of events
    goes out in a few writes, not one per event (each passes every layer of the
    server), and a client that reads slowly holds no more than a chunk of the server's
    memory beyond the transport's own buffer, however long the batch's lines."""
    parts: list[bytes] = []
    size = 0
    for message in messages:
        parts.append(message)
        size += len(message)
        if size >= CHUNK:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


def close_message(job_id: int, state: str | None) -> bytes:
    return _message("close", None, {"job_id": job_id, "state": state})


def denied_message(refused: JobyardError) -> bytes:
    """The caller's credentials no longer allow the stream (a problem's fields); it ends."""
    fields = {"status": refused.status, "title": refused.title, "detail": refused.detail}
    return _message("denied", None, fields)


def reset_message(event_id: int | None, **payload: Any) -> bytes:
    """Events after the client's place were removed by retention: reload, then go on."""
    return _message("reset", event_id, {"reason": "pruned", **payload})


async def pruned_since(node: Node, after: int) -> int | None:
    """The newest removed event id if a stream resuming after ``after`` missed some; else None."""
    if after <= 0:  # from the start: whatever is kept is the history
        return None
    through = await to_thread.run_sync(node.store.retention.pruned_through)
    return through if through > after else None


async def _job_pruned_since(node: Node, job: Job, after: int, after_seq: int) -> int | None:
    """:func:`pruned_since` for a job's stream resuming after the event ``after`` or, on
    its log, after the line ``after_seq``: a line past that place may be gone too."""
    if job.logs_pruned_at is None and job.events_pruned_at is None:
        return None
    if after_seq > 0 and job.logs_pruned_at is not None:
        return await to_thread.run_sync(node.store.retention.pruned_through)
    return await pruned_since(node, after)


def _message(kind: str, event_id: int | None, payload: dict[str, Any]) -> bytes:
    return format_sse_event(
        data_str=json.dumps(payload, default=str),
        event=kind,
        id=None if event_id is None else str(event_id),
    )


async def job_messages(
    node: Node,
    job_id: int,
    after: int,
    *,
    logs_only: bool = False,
    after_seq: int = 0,
    idle: Idle = KEEPALIVE,
) -> AsyncGenerator[bytes, None]:
    """A job's events after ``after``, then ``close`` once it is terminal.

    ``logs_only`` keeps log lines (with ``seq`` > ``after_seq``) and drops the rest;
    ``idle`` is the longest wait for an event before a ping.
    """
    wanted = Filter(job_id=job_id, kinds=("log", "state") if logs_only else ())
    cache = encoded(node)

    def sendable(item: FeedEvent) -> bool:
        record = item.event.record
        return not logs_only or (isinstance(record, LogWritten) and record.seq > after_seq)

    job = await to_thread.run_sync(node.store.jobs.get_job, job_id)
    if job is None:
        return
    if (through := await _job_pruned_since(node, job, after, after_seq)) is not None:
        # Only finished jobs are pruned: what it is now is all there is to reload.
        yield reset_message(None, job_id=job_id, state=job.state.value, pruned_through=through)
        yield close_message(job_id, job.state.value)
        return
    if job.state.terminal:  # its history is complete: replay and close
        replay = history_batches(
            node.store, wanted, after, sys.maxsize, prepare=cache.ahead(job_message)
        )
        async with aclosing(replay) as old:
            async for batch in old:
                for chunk in chunked(job_message(i, cache) for i in batch if sendable(i)):
                    yield chunk
        yield close_message(job_id, job.state.value)
        return
    # aclosing: a stream that ends early gives its hub subscription back at once.
    lives = follow_batches(node.hub, wanted, after, idle=idle, prepare=cache.ahead(job_message))
    async with aclosing(lives):
        async for live in lives:
            if live is None:
                yield PING
                if not await _still_stored(node, job_id):
                    yield close_message(job_id, None)  # removed while we watched
                    return
                continue
            messages: list[bytes] = []
            for item in live:
                if sendable(item):
                    messages.append(job_message(item, cache))
                if isinstance(item.event.record, JobTerminated):
                    messages.append(close_message(job_id, item.event.record.state.value))
                    for chunk in chunked(messages):
                        yield chunk
                    return
            for chunk in chunked(messages):
                yield chunk


async def _still_stored(node: Node, job_id: int) -> bool:
    """Whether the job is still stored; yes while the database is away."""
    return await _unless_away(lambda: node.store.jobs.get_job(job_id) is not None, True)


async def _unless_away(read: Callable[[], T], away: T) -> T:
    """``read()`` in a thread, or ``away`` while the database is unavailable: a stream's
    look at what it follows at a ping, taken again at the next (the hub waits it out)."""
    try:
        return await to_thread.run_sync(read)
    except Exception as exc:
        if not unavailable(exc):
            raise
        return away


GLOBAL_KINDS = (EventKind.STATE, EventKind.WORKFLOW, EventKind.SLA, EventKind.NOTIFICATION)


def global_message(item: FeedEvent, cache: _Encoded) -> bytes:
    """One message per stored event; see docs/api.md for the names."""
    return cache.get(
        "global", item.event.id, lambda: _message(item.sse_name, item.event.id, item.marshal())
    )


@router.get(
    "/api/v1/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses=STREAM_RESPONSES,
)
async def job_events(
    job_id: JobId, node: NodeDep, after: Resume, request: Request
) -> StreamingResponse:
    """A job's `state`, `progress`, `log` and `metric` events, then `close` (SSE)."""
    await _require_job(node, job_id)
    return event_stream(request, node, lambda idle: job_messages(node, job_id, after, idle=idle))


@router.get("/api/v1/events", response_class=StreamingResponse, responses=STREAM_RESPONSES)
async def all_events(
    node: NodeDep,
    request: Request,
    resume: GivenResume,
    start: Start = "start",
    type: Annotated[list[str], Query()] = [],  # noqa: B006
    queue: Annotated[list[str], Query()] = [],  # noqa: B006
    job: JobFilter = None,
    progress: Annotated[bool, Query(description="also every job's `progress` events")] = False,
) -> StreamingResponse:
    """Every job's `job_created`, `job_state` and `job_terminated` events, workflow runs'
    `workflow_started`, `workflow_node_state`, `workflow_finished`, budgets' `sla_breach`
    and notifications' `notification` (delivery state) events (SSE); never ends. With
    `progress=true`, each job's `progress` events too (`job_id`, `type`, `queue`,
    `fraction`, `message`), for a live view of what runs.

    With `from=now` (and no `Last-Event-ID` or `after`) it starts after the newest
    event, whatever the length of the history, and its first message is only an
    `id:` (no data): the place a reconnection resumes from."""
    kinds = tuple(kind.value for kind in GLOBAL_KINDS + ((EventKind.PROGRESS,) if progress else ()))
    wanted = Filter(kinds=kinds, job_id=job, types=tuple(type), queues=tuple(queue))
    now = resume is None and start == "now"
    after = await to_thread.run_sync(node.hub.prepare) if now else resume or 0
    pruned = None if now else await pruned_since(node, after)
    if pruned is not None:  # the client's place is gone: it reloads and goes on from now
        # Past the removed ids too: when every event was removed the hub's place is 0.
        after = max(await to_thread.run_sync(node.hub.prepare), pruned)

    cache = encoded(node)
    ahead = cache.ahead(global_message)

    async def messages(idle: Idle) -> AsyncGenerator[bytes, None]:
        if now:  # sets the client's last event id without dispatching an event
            yield format_sse_event(comment="from now", id=str(after))
        if pruned is not None:
            yield reset_message(after, pruned_through=pruned, resume_from=after)
        batches = follow_batches(node.hub, wanted, after, idle=idle, prepare=ahead)
        async with aclosing(batches):
            async for batch in batches:
                if batch is None:
                    yield PING
                    continue
                for chunk in chunked(global_message(i, cache) for i in batch):
                    yield chunk

    return event_stream(request, node, messages)


@router.get(
    "/api/v1/workflow-runs/{run_id}/events",
    response_class=StreamingResponse,
    responses=STREAM_RESPONSES,
)
async def run_events(
    run_id: RunId, node: NodeDep, request: Request, resume: GivenResume
) -> StreamingResponse:
    """A workflow run's changes from now on (or after `Last-Event-ID`): its nodes' state
    changes and its own events, named as on `/api/v1/events`, then `close` once the run is
    no longer running (SSE)."""
    if await _run_state(node, run_id) is None:
        raise NotFound(f"no workflow run with id {run_id}")
    return event_stream(request, node, lambda idle: run_messages(node, run_id, resume, idle=idle))


RUN_KINDS = (EventKind.STATE.value, EventKind.WORKFLOW.value)


async def run_messages(
    node: Node, run_id: int, after: int | None, *, idle: Idle = KEEPALIVE
) -> AsyncGenerator[bytes, None]:
    """The run's events after ``after`` (None: from now), then ``close`` with its state.

    The place is taken before the run is read, so nothing that ends it after the read
    goes unseen. The stream follows a run while it runs, and a stopped run until its
    last node has died (the stop changes the run before its nodes are killed): the run
    is read again when a node ends and when the stream is idle; a read that finds it over
    saw every node's end stored, the last perhaps with a later id than the end it was
    read for, so what is stored since the last event sent goes before the ``close``.
    A run that succeeded or failed closes once its ``workflow_finished`` is sent (it is
    stored just after the run's new state), or at the next idle moment. A run that had
    ended before the stream opened gets what is stored after ``after``, then ``close``.
    A stream from now starts with that place alone (an ``id:``), which a reconnection
    resumes from, as the global stream's ``from=now`` does. A reconnection to a place
    retention has removed events after starts with ``reset``: then ``close`` for a run
    that has ended, or the run's changes from the ``reset``'s id on.
    """
    missed = after is not None  # a reconnection: what it missed, even of an ended run
    if after is None:
        after = await to_thread.run_sync(node.hub.prepare)
        yield format_sse_event(comment="from now", id=str(after))
    elif (pruned := await pruned_since(node, after)) is not None:
        missed = False  # nothing after the place is whole: the client reloads
        state, going = await _run_going(node, run_id)
        told = {"run_id": run_id, "state": state, "pruned_through": pruned}
        if going:  # as the global stream does: live from past the removed ids
            after = max(await to_thread.run_sync(node.hub.prepare), pruned)
            yield reset_message(after, **told, resume_from=after)
        else:
            yield reset_message(None, **told)
    wanted = Filter(kinds=RUN_KINDS, workflow_run=run_id)
    cache = encoded(node)
    state, going = await _run_going(node, run_id)
    ahead = cache.ahead(global_message)
    if going:
        last = after  # the newest event sent
        over = finished = False  # found over by a read of the run; told by workflow_finished
        batches = follow_batches(node.hub, wanted, after, idle=idle, prepare=ahead)
        async with aclosing(batches):
            async for batch in batches:
                if batch is None:
                    state, going = await _run_going(node, run_id, away=(state, going))
                    if over := not going:
                        break
                    yield PING
                    continue
                sent: list[bytes] = []
                for item in batch:
                    sent.append(global_message(item, cache))
                    last = item.event.id
                    record = item.event.record
                    if isinstance(record, WorkflowRunFinished):
                        if await _ended_since(node, run_id, record):
                            continue  # a replayed end of a run reopened since: it goes on
                        state, finished = record.state, True
                        break
                    if isinstance(record, JobTerminated):
                        state, going = await _run_going(node, run_id)
                        # (an end that ends the run is told by workflow_finished)
                        if over := state is None or (state is RunState.STOPPED and not going):
                            break
                for chunk in chunked(sent):
                    yield chunk
                if finished or over:
                    break
        if over:
            # The read saw every node's end stored, the last perhaps with a later id than
            # the end just sent (its worker stored it later): each is told before the close.
            async for chunk in _stored_since(node, wanted, last, cache):
                yield chunk
    elif missed:
        async for chunk in _stored_since(node, wanted, after, cache):
            yield chunk
    yield _message("close", None, {"run_id": run_id, "state": state})


async def _stored_since(
    node: Node, wanted: Filter, after: int, cache: _Encoded
) -> AsyncGenerator[bytes, None]:
    """The messages of the ``wanted`` events stored after ``after``, up to the newest now."""
    until = await to_thread.run_sync(node.store.events.last_event_id)
    replay = history_batches(node.store, wanted, after, until, prepare=cache.ahead(global_message))
    async with aclosing(replay) as old:
        async for batch in old:
            for chunk in chunked(global_message(item, cache) for item in batch):
                yield chunk


async def _ended_since(node: Node, run_id: int, end: WorkflowRunFinished) -> bool:
    """Whether the run, told ``end``, was reopened after it: it runs (or is being
    stopped) now, or ended later (a stream replayed from before a retry meets the first
    end first)."""
    run = await to_thread.run_sync(node.store.runs.get_run, run_id)
    if run is None:
        return False
    # Not ended: running again, or stopped while its nodes die; or ended since.
    return run.finished_at is None or run.finished_at > end.at


async def _run_state(node: Node, run_id: int) -> RunState | None:
    run = await to_thread.run_sync(node.store.runs.get_run, run_id)
    return None if run is None else run.state


async def _run_going(
    node: Node, run_id: int, *, away: tuple[RunState | None, bool] | None = None
) -> tuple[RunState | None, bool]:
    """The run's state, and whether its stream goes on: while it runs, and while a node
    of a stopped run is still alive (being killed). ``away``: the answer while the
    database is unavailable (a look at a ping), else its error."""

    def going() -> tuple[RunState | None, bool]:
        found = node.store.runs.live_run(run_id)
        if found is None:
            return None, False
        run, live = found
        return run.state, run.state is RunState.RUNNING or (run.state is RunState.STOPPED and live)

    return await (to_thread.run_sync(going) if away is None else _unless_away(going, away))


async def _require_job(node: Node, job_id: int) -> None:
    if await to_thread.run_sync(node.store.jobs.get_job, job_id) is None:
        raise NotFound(f"no job with id {job_id}")
