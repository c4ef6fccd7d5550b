"""How the clients run the API's operations: effects asked by flows, done by a driver.

Each operation of the client is written once, in :mod:`.calls`, as a *flow*: a
generator that yields what it needs done — an HTTP request (:class:`Call`), a
wait (:class:`Sleep`), the next event of a stream (:class:`Next`) — and gets
the answer back (or the error raised in it), and for listings an item for the
caller (:class:`Emit`). A flow does no I/O itself. :class:`SyncDriver` does
the effects with :class:`httpx.Client` and ``time.sleep``; :class:`AsyncDriver`
with :class:`httpx.AsyncClient` and ``anyio.sleep``. So the sync and the async
client build every request and parse every answer with the same code, and
differ only in their two small driving loops.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from jobyard.client.errors import ApiError, ServerUnreachable
from jobyard.client.events import Event
from jobyard.client.stream import AsyncEventStream, EventStream, StreamRequest

T = TypeVar("T")
S = TypeVar("S", bound=EventStream)


@dataclass(frozen=True)
class Call:
    """An HTTP request; the flow gets back its JSON answer (None when empty).

    With ``status`` it gets ``(status code, JSON)``: where 200 and 201 mean
    different things (a job found by its idempotency key, or a new one).
    """

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    status: bool = False


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(eq=False)
class StreamSpec:
    """An event stream to open (and reopen): ``request(stream)`` says what to open."""

    request: Callable[[EventStream], StreamRequest]
    last_event_id: int | None = None
    until_close: bool = True
    deadline: float | None = None


@dataclass(frozen=True)
class Next:
    """The next event of a stream (opened at the first ``Next``), or None once it ended."""

    stream: StreamSpec


@dataclass(frozen=True)
class Emit(Generic[T]):
    """An item for the caller of a listing or a stream."""

    value: T


Effect = Call | Sleep | Next | Emit[Any]
Flow = Generator[Effect, Any, T]  # a flow of one result: its return value
Steps = Generator[Effect, Any, None]  # a flow of items: what it emits


@dataclass(frozen=True)
class _Done:
    value: Any


@dataclass(frozen=True)
class Settings:
    """What a driver needs besides its HTTP client."""

    retries: int = 5
    reconnect_delay: float = 0.5


class _Driver:
    """The part of both drivers that needs no I/O: sending answers into a flow."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @staticmethod
    def advance(flow: Flow[Any], reply: Any, error: BaseException | None) -> Effect | _Done:
        """The flow's next effect, given the answer to its last one (or the error)."""
        try:
            return flow.throw(error) if error is not None else flow.send(reply)
        except StopIteration as stop:
            return _Done(stop.value)

    def stream(self, http: Any, spec: StreamSpec, kind: type[S]) -> S:
        return kind(
            http,
            spec.request,
            last_event_id=spec.last_event_id,
            until_close=spec.until_close,
            retries=self.settings.retries,
            delay=self.settings.reconnect_delay,
            deadline=spec.deadline,
        )


class SyncDriver(_Driver):
    """Runs flows with an :class:`httpx.Client`."""

    def __init__(self, http: httpx.Client, settings: Settings) -> None:
        super().__init__(settings)
        self.http = http

    def run(self, flow: Flow[T]) -> T:
        """The result of a flow of one result."""
        for step in self._drive(flow):
            if isinstance(step, _Done):
                value: T = step.value
                return value
        raise AssertionError("a flow ends with its result")  # pragma: no cover

    def iterate(self, flow: Steps) -> Iterator[Any]:
        """The items a flow emits, as they come."""
        for step in self._drive(flow):
            if not isinstance(step, _Done):
                yield step

    def _drive(self, flow: Flow[Any]) -> Iterator[Any]:
        streams: dict[StreamSpec, Iterator[Event]] = {}
        reply: Any = None
        error: BaseException | None = None
        try:
            while not isinstance(effect := self.advance(flow, reply, error), _Done):
                reply, error = None, None
                if isinstance(effect, Emit):
                    yield effect.value
                    continue
                try:
                    reply = self._do(effect, streams)
                except Exception as exc:
                    error = exc
            yield effect
        finally:
            flow.close()
            for events in streams.values():
                close = getattr(events, "close", None)
                if close is not None:
                    close()

    def _do(self, effect: Call | Sleep | Next, streams: dict[StreamSpec, Iterator[Event]]) -> Any:
        if isinstance(effect, Call):
            return answer(_request(self.http, effect), effect.status)
        if isinstance(effect, Sleep):
            time.sleep(effect.seconds)
            return None
        if effect.stream not in streams:
            streams[effect.stream] = iter(self.stream(self.http, effect.stream, EventStream))
        return next(streams[effect.stream], None)


class AsyncDriver(_Driver):
    """Runs flows with an :class:`httpx.AsyncClient`."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        super().__init__(settings)
        self.http = http

    async def run(self, flow: Flow[T]) -> T:
        """The result of a flow of one result."""
        async with aclosing(self._drive(flow)) as steps:
            async for step in steps:
                if isinstance(step, _Done):
                    value: T = step.value
                    return value
        raise AssertionError("a flow ends with its result")  # pragma: no cover

    async def iterate(self, flow: Steps) -> AsyncGenerator[Any, None]:
        """The items a flow emits, as they come (its streams closed with it)."""
        async with aclosing(self._drive(flow)) as steps:
            async for step in steps:
                if not isinstance(step, _Done):
                    yield step

    async def _drive(self, flow: Flow[Any]) -> AsyncGenerator[Any, None]:
        streams: dict[StreamSpec, AsyncIterator[Event]] = {}
        reply: Any = None
        error: BaseException | None = None
        try:
            while not isinstance(effect := self.advance(flow, reply, error), _Done):
                reply, error = None, None
                if isinstance(effect, Emit):
                    yield effect.value
                    continue
                try:
                    reply = await self._do(effect, streams)
                except Exception as exc:
                    error = exc
            yield effect
        finally:
            flow.close()
            for events in streams.values():
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    await aclose()

    async def _do(
        self, effect: Call | Sleep | Next, streams: dict[StreamSpec, AsyncIterator[Event]]
    ) -> Any:
        if isinstance(effect, Call):
            return answer(await _arequest(self.http, effect), effect.status)
        if isinstance(effect, Sleep):
            import anyio  # here: the sync client's users do not pay for importing it

            await anyio.sleep(effect.seconds)
            return None
        if effect.stream not in streams:
            stream = self.stream(self.http, effect.stream, AsyncEventStream)
            streams[effect.stream] = aiter(stream)
        return await anext(streams[effect.stream], None)


def _request(http: httpx.Client, call: Call) -> httpx.Response:
    try:
        return http.request(call.method, call.path, params=_params(call), json=call.json)
    except httpx.TransportError as exc:
        raise _unreachable(http, exc) from exc


async def _arequest(http: httpx.AsyncClient, call: Call) -> httpx.Response:
    try:
        return await http.request(call.method, call.path, params=_params(call), json=call.json)
    except httpx.TransportError as exc:
        raise _unreachable(http, exc) from exc


def answer(response: httpx.Response, with_status: bool = False) -> Any:
    """The JSON of a successful answer (after its status code if ``with_status``).

    A problem raises its :class:`ApiError`.
    """
    if response.is_error:
        raise ApiError.from_response(response)
    body = response.json() if response.content else None
    return (response.status_code, body) if with_status else body


def _params(call: Call) -> dict[str, Any]:
    return {key: value for key, value in call.params.items() if value is not None}


def _unreachable(http: httpx.Client | httpx.AsyncClient, exc: httpx.TransportError) -> Exception:
    server = str(http.base_url).rstrip("/")
    return ServerUnreachable(f"cannot reach {server}: {str(exc) or type(exc).__name__}")
