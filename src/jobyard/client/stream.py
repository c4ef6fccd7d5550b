"""Event streams of the API, read over SSE and reopened after a dropped connection.

A stream remembers the id of the last event it delivered; when the connection
breaks (or ends before ``close``) it reconnects with ``Last-Event-ID`` and skips
any event it has already delivered, so the caller sees each event once. When
the server says the events after that id were removed by retention (a ``reset``
event), the stream raises :class:`StreamReset`: what the caller built from
earlier events is stale and must be reloaded. When the server says the
caller's credentials no longer allow the stream (a ``denied`` event: a revoked
token, a removed user, a lowered role), it raises the matching :class:`ApiError`
(:class:`~jobyard.client.errors.Unauthorized` or ``Forbidden``) rather than
reconnecting.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

from jobyard.client.errors import ApiError, ServerUnreachable
from jobyard.client.events import Event, parse_event
from jobyard.client.sse import LineSplitter, SSEDecoder, SSEMessage, iter_lines, iter_sse

EVENT_STREAM = "text/event-stream"
_UNAVAILABLE = frozenset({404, 405, 406, 501})
_BUSY = frozenset({429, 503})  # the server is there, its database (or room) is not, for now
#: How long a stream keeps reconnecting while the server answers 503 (its database away:
#: a restart, a failover) or 429: longer than a worker's lease, which outages are
#: planned to stay within. Connections that fail count against ``retries`` instead.
BUSY_PATIENCE = 120.0
_MAX_DELAY = 5.0


@dataclass(frozen=True)
class StreamRequest:
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None


class StreamUnavailable(Exception):
    """The server answered without streaming (an older server, or no such endpoint).

    ``body`` is its JSON answer, if any (a ``POST /jobs`` answers the new job).
    """

    def __init__(self, status: int, body: Any = None) -> None:
        super().__init__(f"the server does not stream this resource (HTTP {status})")
        self.status = status
        self.body = body


class StreamReset(Exception):
    """The server removed events this stream would have resumed from (retention).

    Reload what was built from the stream (``client.job(id)``, a fresh list);
    ``event`` is the ``reset`` event. The iteration ends with it: a global stream
    goes on when opened again from ``event.id`` (``all_events(last_event_id=...)``);
    a job's stream has nothing more to say (the job had finished long ago).
    """

    def __init__(self, event: Event) -> None:
        super().__init__("events after the stream's place were removed by retention: reload")
        self.event = event


class Patience:
    """How long a server has answered 503 (or 429) in a row: up to :data:`BUSY_PATIENCE`."""

    def __init__(self) -> None:
        self._since: float | None = None  # the first of those answers

    def spent(self) -> bool:
        """One more such answer: whether they have lasted longer than the patience."""
        now = time.monotonic()
        self._since = self._since or now
        return now - self._since > BUSY_PATIENCE

    def reset(self) -> None:
        """The server answered otherwise."""
        self._since = None


class _Dropped(Exception):
    """The connection broke, or the server refused for now (5xx, 429): ``busy`` when it
    answered 503 or 429, ``wait`` its ``Retry-After`` in seconds."""

    def __init__(self, message: str, *, busy: bool = False, wait: float | None = None) -> None:
        super().__init__(message)
        self.busy = busy
        self.wait = wait


class EventStream:
    """Iterates an SSE resource; ``request(stream)`` says what to (re)open.

    ``until_close`` streams end after the ``close`` event (which is yielded);
    the others run until the caller stops. ``retries`` bounds the reconnections
    in a row that deliver nothing (a server answering 503 or 429 is waited for up to
    :data:`BUSY_PATIENCE` instead), ``delay`` is the wait before the first one
    (a ``retry:`` field of the server replaces it); ``deadline``
    (``time.monotonic()``) raises :class:`TimeoutError` once passed.

    Everything but the I/O lives here, so that :class:`AsyncEventStream`
    behaves the same: only the loops that read and sleep are its own.
    """

    def __init__(
        self,
        http: httpx.Client | httpx.AsyncClient,
        request: Callable[[EventStream], StreamRequest],
        *,
        last_event_id: int | None = None,
        until_close: bool = True,
        retries: int = 5,
        delay: float = 0.5,
        deadline: float | None = None,
    ) -> None:
        self.http = http
        self.request = request
        self.last_event_id = last_event_id
        self.job_id: int | None = None
        self.until_close = until_close
        self.retries = retries
        self.deadline = deadline
        self.delivered = 0
        self.connected = False
        self._delay = delay  # before the first reconnection; doubles after each failure
        self._failures = 0  # reconnections in a row that delivered nothing
        self._busy = Patience()

    def __iter__(self) -> Iterator[Event]:
        if not isinstance(self.http, httpx.Client):
            raise TypeError("an EventStream over an httpx.AsyncClient is iterated with async for")
        while True:
            before = self.delivered
            try:
                for event in self._connection(self.http):
                    yield event
                    if self._ends(event):
                        return
            except (httpx.TransportError, _Dropped) as exc:
                error: Exception = self._failed(exc)
            else:
                error = _Dropped("the stream ended before its close event")
            time.sleep(self._pause(before, error))

    def _connection(self, http: httpx.Client) -> Iterator[Event]:
        request = self.request(self)
        with http.stream(request.method, request.path, **self._options(request)) as response:
            if not self._streams(response):
                response.read()
                self._refuse(response)
            decoder = SSEDecoder()
            try:
                for message in iter_sse(self._lines(response.iter_text()), decoder):
                    event = self._receive(message, decoder)
                    if event is not None:
                        yield event
            finally:
                self._adopt(decoder.last_event_id)

    # -- what both loops share ---------------------------------------------------------
    def _ends(self, event: Event) -> bool:
        return event.kind == "close" and self.until_close

    def _failed(self, exc: Exception) -> Exception:
        """The error to retry after, or raise at once if it cannot get better."""
        if isinstance(exc, httpx.TimeoutException):
            self._check_deadline()
        if isinstance(exc, httpx.ConnectError) and not self.connected:
            raise self._unreachable(exc) from exc  # never there: no use retrying
        return exc

    def _pause(self, before: int, error: Exception) -> float:
        """How long to wait before reconnecting, after a connection that had delivered
        ``before`` events ended with ``error`` (raises when retries are spent)."""
        if self.delivered > before:
            self._failures = 0
            self._busy.reset()
        if isinstance(error, _Dropped) and error.busy:
            if self._busy.spent():
                note = f" (the server answered so for {BUSY_PATIENCE:g} s)"
                raise self._unreachable(error, note) from error
            delay = error.wait if error.wait is not None else self._delay
        else:
            self._failures += self.delivered == before
            if self._failures > self.retries:
                note = f" (the event stream broke; {self.retries} reconnections failed)"
                raise self._unreachable(error, note) from error
            delay = self._delay * 2.0 ** max(self._failures - 1, 0)
        self._check_deadline()
        delay = min(delay, _MAX_DELAY)
        if self.deadline is not None:
            delay = min(delay, max(self.deadline - time.monotonic(), 0.0))
        return delay

    def _unreachable(self, error: Exception, note: str = "") -> ServerUnreachable:
        where = str(self.http.base_url).rstrip("/")
        return ServerUnreachable(
            f"cannot reach {where}: {str(error) or type(error).__name__}{note}"
        )

    def _check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise TimeoutError("no end of the event stream before the deadline")

    def _options(self, request: StreamRequest) -> dict[str, Any]:
        return {
            "params": request.params,
            "json": request.json,
            "headers": self._headers(),
            "timeout": self._timeout(),
        }

    def _receive(self, message: SSEMessage, decoder: SSEDecoder) -> Event | None:
        """The event of ``message``, or None if it was delivered before."""
        if decoder.retry is not None:  # the server's say on when to come back
            self._delay = decoder.retry / 1000
        event = _event(message)
        if event.id is not None and self._seen(event.id):
            return None
        self._note(event)
        if event.kind == "reset":
            raise StreamReset(event)
        if event.kind == "denied":  # the credentials no longer do: reconnecting cannot help
            status = event.data.get("status")
            raise ApiError.from_problem(status if isinstance(status, int) else 401, event.data)
        return event

    def _lines(self, chunks: Iterable[str]) -> Iterator[str]:
        """The response's lines; past the deadline (seen at a line or a keep-alive) it stops."""
        for line in iter_lines(chunks):
            self._check_deadline()
            yield line

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": EVENT_STREAM, "Cache-Control": "no-cache"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        return headers

    def _timeout(self) -> httpx.Timeout:
        """No read timeout (events may be rare), unless a deadline bounds the wait."""
        connect = self.http.timeout.connect
        if self.deadline is None:
            return httpx.Timeout(connect, read=None)
        remaining = max(self.deadline - time.monotonic(), 0.01)
        return httpx.Timeout(connect, read=remaining)

    def _streams(self, response: httpx.Response) -> bool:
        """Whether ``response`` is the stream (else read it and call :meth:`_refuse`)."""
        if response.status_code < 300 and _is_stream(response):
            self.connected = True
            self._busy.reset()
            return True
        return False

    def _refuse(self, response: httpx.Response) -> NoReturn:
        status = response.status_code
        if status in _BUSY:
            raise _Dropped(f"HTTP {status}", busy=True, wait=_retry_after(response))
        if status >= 500:
            raise _Dropped(f"HTTP {status}")
        if (status < 300 or status in _UNAVAILABLE) and self.delivered == 0:
            raise StreamUnavailable(status, _json(response))
        raise ApiError.from_response(response)

    def _seen(self, event_id: int) -> bool:
        return self.last_event_id is not None and event_id <= self.last_event_id

    def _adopt(self, last_event_id: str) -> None:
        """Resume after an id the server gave without an event (a stream "from now")."""
        if last_event_id.isdigit() and not self._seen(int(last_event_id)):
            self.last_event_id = int(last_event_id)

    def _note(self, event: Event) -> None:
        self.delivered += 1
        if event.id is not None:
            self.last_event_id = event.id
        if self.job_id is None:
            self.job_id = event.job_id


class AsyncEventStream(EventStream):
    """:class:`EventStream` over an :class:`httpx.AsyncClient`: ``async for event in …``."""

    async def __aiter__(self) -> AsyncIterator[Event]:
        import anyio  # here: the sync client's users do not pay for importing it

        if not isinstance(self.http, httpx.AsyncClient):
            raise TypeError("an AsyncEventStream needs an httpx.AsyncClient")
        while True:
            before = self.delivered
            try:
                async with aclosing(self._aconnection(self.http)) as events:
                    async for event in events:
                        yield event
                        if self._ends(event):
                            return
            except (httpx.TransportError, _Dropped) as exc:
                error: Exception = self._failed(exc)
            else:
                error = _Dropped("the stream ended before its close event")
            await anyio.sleep(self._pause(before, error))

    async def _aconnection(self, http: httpx.AsyncClient) -> AsyncGenerator[Event, None]:
        request = self.request(self)
        async with http.stream(request.method, request.path, **self._options(request)) as response:
            if not self._streams(response):
                await response.aread()
                self._refuse(response)
            decoder = SSEDecoder()
            try:
                async for line in _alines(response.aiter_text()):
                    self._check_deadline()
                    message = decoder.feed(line)
                    event = None if message is None else self._receive(message, decoder)
                    if event is not None:
                        yield event
            finally:
                self._adopt(decoder.last_event_id)


async def _alines(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
    """The lines of an async iterator of text chunks."""
    splitter = LineSplitter()
    async for chunk in chunks:
        for line in splitter.feed(chunk):
            yield line


def _event(message: SSEMessage) -> Event:
    """The typed event of ``message`` (its raw JSON in ``data``)."""
    try:
        data = json.loads(message.data)
    except ValueError:
        data = {"text": message.data}
    if not isinstance(data, dict):
        data = {"value": data}
    event_id = int(message.id) if message.id and message.id.isdigit() else None
    return parse_event(event_id, message.event, data)


def _is_stream(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith(EVENT_STREAM)


def _retry_after(response: httpx.Response) -> float | None:
    """The seconds of a ``Retry-After`` header (its date form is not used by jobyard)."""
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
