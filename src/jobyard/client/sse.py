"""A parser of the ``text/event-stream`` format (Server-Sent Events).

It follows the WHATWG HTML "event stream interpretation": lines end with CRLF,
LF or CR; a line starting with ``:`` is a comment; ``field: value`` loses one
space after the colon; ``data`` lines accumulate (joined by LF); ``id`` and
``retry`` set the stream's last event id and reconnection time; a blank line
dispatches the event, unless it has no data; an unfinished event at the end of
the stream is dropped.

One difference from the browser's ``MessageEvent``: :attr:`SSEMessage.id` is
the ``id`` field of that message only (``None`` without one), while the
browser's ``lastEventId`` carries over from earlier messages. The carried-over
value, which a reconnection sends as ``Last-Event-ID``, is
:attr:`SSEDecoder.last_event_id`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SSEMessage:
    """One dispatched event: its type (``message`` by default), data and own id."""

    event: str
    data: str
    id: str | None = None


class SSEDecoder:
    """Turns lines (without their terminators) into :class:`SSEMessage` objects."""

    def __init__(self) -> None:
        self.last_event_id = ""
        self.retry: int | None = None  # reconnection time in milliseconds
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> SSEMessage | None:
        """Take one line; a blank one returns the event it completes, if any."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._field(name, value)
        return None

    def _field(self, name: str, value: str) -> None:
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
            self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)

    def _dispatch(self) -> SSEMessage | None:
        event, data, id_ = self._event, self._data, self._id
        self._event, self._data, self._id = "", [], None
        if not data:
            return None
        return SSEMessage(event=event or "message", data="\n".join(data), id=id_)


class LineSplitter:
    """Splits text chunks into lines at CRLF, LF or CR (and nothing else), chunk by chunk.

    A CR at the end of a chunk may be the first half of a CRLF, so the LF that
    may start the next chunk is skipped. A leading byte order mark is dropped.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._skip_lf = False
        self._first = True

    def feed(self, chunk: str) -> list[str]:
        """The lines that ``chunk`` completes."""
        if not chunk:
            return []
        if self._first:
            chunk, self._first = chunk.removeprefix("\ufeff"), False
        if self._skip_lf and chunk.startswith("\n"):
            chunk = chunk[1:]
        text = (self._pending + chunk).replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        self._pending = lines.pop()
        self._skip_lf = chunk.endswith("\r")
        return lines


def iter_lines(chunks: Iterable[str]) -> Iterator[str]:
    """Split text chunks into lines (see :class:`LineSplitter`)."""
    splitter = LineSplitter()
    for chunk in chunks:
        yield from splitter.feed(chunk)


def iter_sse(lines: Iterable[str], decoder: SSEDecoder | None = None) -> Iterator[SSEMessage]:
    """The messages in ``lines``; pass a ``decoder`` to read its id and retry afterwards."""
    decoder = decoder or SSEDecoder()
    for line in lines:
        message = decoder.feed(line)
        if message is not None:
            yield message
