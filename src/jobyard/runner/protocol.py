"""Job output as lines, and the line protocol a job speaks on its stdout.

Line protocol
-------------
Any job (a command, or anything a Python job starts) can report progress and
metrics by writing lines starting with ``##jobyard`` to its **stdout**::

    ##jobyard progress <fraction> [message]
    ##jobyard metric <name> <value>

``fraction`` is a number from 0 to 1 (values outside are clamped), the message
is the rest of the line (optional). ``name`` is one word, ``value`` a number.
For example ``##jobyard progress 0.42 copying files`` reports 42 % with the
message "copying files", and ``##jobyard metric rows 1200`` sets the metric
``rows`` to 1200. In a shell script::

    echo "##jobyard progress 0.5 halfway"

These lines are consumed: they do not appear in the job's log (their bytes do
count in its output size). A line that starts with ``##jobyard`` but does not
parse (unknown word, missing or non-numeric value, NaN) is logged as it is, so
a mistake stays visible. The protocol is not read on stderr.

Lines
-----
Output is split on ``\\n`` and decoded as UTF-8; invalid bytes and NUL (which
PostgreSQL cannot store in text) become U+FFFD, so that every database stores
the same lines. A trailing ``\\r`` is dropped and a line longer than 64 KiB is
cut into pieces of at most 64 KiB (at a character boundary).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PREFIX = "##jobyard "
MAX_LINE = 64 * 1024


@dataclass(frozen=True)
class Progress:
    fraction: float
    message: str | None


@dataclass(frozen=True)
class Metric:
    name: str
    value: float


def parse_line(line: str) -> Progress | Metric | None:
    """The protocol message in a stdout line, or None for a line to log as it is."""
    if not line.startswith(PREFIX):
        return None
    verb, _, rest = line[len(PREFIX) :].strip().partition(" ")
    if verb == "progress":
        return _progress(rest)
    if verb == "metric":
        return _metric(rest)
    return None


def _progress(rest: str) -> Progress | None:
    number, _, message = rest.strip().partition(" ")
    fraction = _number(number)
    if fraction is None:
        return None
    return Progress(min(max(fraction, 0.0), 1.0), message.strip() or None)


def _metric(rest: str) -> Metric | None:
    words = rest.split()
    if len(words) != 2:
        return None
    value = _number(words[1])
    return None if value is None else Metric(words[0], value)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class LineSplitter:
    """Turns chunks of bytes into text lines, keeping an unfinished line for later."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._max = max_line
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[str]:
        buf = self._buf
        buf += data
        lines: list[str] = []
        start = 0
        while True:
            end = buf.find(b"\n", start, start + self._max + 1)
            if end >= 0:
                lines.append(_decode(buf[start:end]))
                start = end + 1
            elif len(buf) - start > self._max:
                end = _char_boundary(buf, start, start + self._max)
                lines.append(_decode(buf[start:end]))
                start = end
            else:
                break
        del buf[:start]
        return lines

    @property
    def pending(self) -> int:
        """Bytes of the unfinished line held back."""
        return len(self._buf)

    def flush(self) -> list[str]:
        """The unfinished last line, if any (at end of output)."""
        rest, self._buf = self._buf, bytearray()
        return [_decode(rest)] if rest else []


def _char_boundary(buf: bytearray, start: int, end: int) -> int:
    """Move a cut back (at most 3 bytes) so it does not split a UTF-8 character."""
    for cut in range(end, max(end - 4, start), -1):
        if buf[cut] & 0xC0 != 0x80:
            return cut
    return end


def _decode(raw: bytearray) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    # decoded with replacement, so no lone surrogate: only NUL is left to replace
    return raw.decode("utf-8", errors="replace").replace("\0", "\ufffd")


def storable(text: str) -> str:
    """``text`` as every database stores it: NUL (PostgreSQL's text refuses it) and lone
    surrogates (not UTF-8, so no database takes them) become U+FFFD."""
    text = text.replace("\0", "\ufffd")
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a surrogate pair becomes its character, a lone one U+FFFD
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def storable_json(value: Any) -> Any:
    """``value`` (decoded JSON) with every text in it, keys too, :func:`storable`."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(key)): storable_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable_json(item) for item in value]
    return value
