"""Submit forms from a job type's JSON Schema, and typed arguments from what they send.

:func:`fields` makes one :class:`Field` per top-level property of the type's
params schema, for a template to render as one input: strings as text (or a
date, datetime-local or time input for those formats), integers and numbers
with their bounds, booleans as checkboxes, enums as selects, arrays of scalars
as a list of one value per line, and anything else (objects, mixed types) as
JSON in a text area. :func:`args_from_form` reads the submitted values back
into typed arguments. It only reports values that do not parse: the server
validates the arguments against the schema on submit, as for any other client,
and names the bad fields.

Browsers send a date and time without an offset: ``tz`` is the zone it is read
in (and the zone defaults are shown in), UTC unless the page knows better.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Literal

from jobyard.text import read_json

Kind = Literal[
    "text",
    "number",
    "integer",
    "checkbox",
    "select",
    "date",
    "datetime-local",
    "time",
    "textarea-json",
    "list",
]
Schema = Mapping[str, Any]
SCALARS = ("string", "integer", "number", "boolean")
FORMATS: dict[str, Kind] = {"date": "date", "date-time": "datetime-local", "time": "time"}
FALSE = frozenset({"", "false", "off", "0", "no"})
INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Field:
    """One input of a submit form.

    ``default`` is the value to fill in as the input takes it (text; a
    checkbox's state); ``options`` are a select's values, as text; ``step`` is
    the ``step`` attribute of a number input; ``pattern`` an HTML ``pattern``
    (it matches the whole value) equivalent to the schema's (which matches
    anywhere). A checkbox is never ``required``: unchecked, it sends false.
    """

    name: str
    label: str
    kind: Kind
    required: bool = False
    default: str | bool | None = None
    help: str | None = None
    options: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    step: str | None = None
    pattern: str | None = None


class _Omitted:
    """An empty input: the argument is left out, so the type's default applies."""


OMITTED = _Omitted()


def fields(schema: Schema, *, tz: tzinfo = UTC, now: datetime | None = None) -> list[Field]:
    """The form's inputs, in the order of the schema's properties."""
    required = set(schema.get("required") or ())
    return [
        _field(name, prop, name in required, _Clock(tz, now))
        for name, prop in _properties(schema).items()
    ]


def args_from_form(
    schema: Schema,
    form: Mapping[str, Sequence[str]],
    *,
    tz: tzinfo = UTC,
    now: datetime | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(the typed arguments, an error message per field whose value does not parse).

    An empty input is left out (the type's default applies); an unchecked
    checkbox is false. Names the schema does not declare (a CSRF token, the
    queue) are not arguments and are ignored.
    """
    args: dict[str, Any] = {}
    errors: dict[str, str] = {}
    clock = _Clock(tz, now)
    for name, prop in _properties(schema).items():
        try:
            value = _read(prop, list(form.get(name, ())), clock)
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        if value is not OMITTED:
            args[name] = value
    return args, errors


def kind_of(prop: Schema) -> Kind:
    """The input for a property's schema."""
    if _scalar_enum(prop):
        return "select"
    kind = _type(prop)
    if kind == "boolean":
        return "checkbox"
    if kind in ("integer", "number"):
        return "integer" if kind == "integer" else "number"
    if kind == "string":
        return FORMATS.get(str(prop.get("format")), "text")
    if kind == "array" and _items_type(prop) in SCALARS:
        return "list"
    return "textarea-json"


# -- the schema ----------------------------------------------------------------
def _properties(schema: Schema) -> dict[str, Schema]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    return {str(k): v if isinstance(v, Mapping) else {} for k, v in properties.items()}


def _type(prop: Schema) -> str | None:
    """The property's one type; a nullable one counts as its other type."""
    kind = prop.get("type")
    if isinstance(kind, list):
        others = [k for k in kind if k != "null"]
        kind = others[0] if len(others) == 1 else None
    return kind if isinstance(kind, str) else None


def _items_type(prop: Schema) -> str | None:
    items = prop.get("items")
    return _type(items) if isinstance(items, Mapping) else None


def _scalar_enum(prop: Schema) -> bool:
    values = prop.get("enum")
    return (
        isinstance(values, list)
        and bool(values)
        and all(v is None or isinstance(v, str | int | float | bool) for v in values)
    )


def _field(name: str, prop: Schema, required: bool, clock: _Clock) -> Field:
    kind = kind_of(prop)
    low, high = _bounds(prop, kind)
    return Field(
        name=name,
        label=str(prop.get("title") or _label(name)),
        kind=kind,
        required=required and kind != "checkbox",
        default=_shown(kind, prop["default"], clock) if "default" in prop else _unset(kind),
        help=prop.get("description"),
        options=tuple(_text(v) for v in prop["enum"]) if kind == "select" else (),
        min=low,
        max=high,
        step=_step(prop, kind),
        pattern=_pattern(prop) if kind == "text" else None,
    )


def _label(name: str) -> str:
    """``from_date`` → "From date", ``maxURLLength`` → "Max URL length"."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    words = [w if w.isupper() and len(w) > 1 else w.lower() for w in re.split(r"[\s_-]+", spaced)]
    label = " ".join(w for w in words if w)
    return label[:1].upper() + label[1:]


def _bounds(prop: Schema, kind: Kind) -> tuple[float | None, float | None]:
    if kind not in ("integer", "number"):
        return None, None
    nudge = 1 if kind == "integer" else 0  # an exclusive bound, as an input's inclusive one
    low = _number(prop.get("minimum"))
    if low is None and (exclusive := _number(prop.get("exclusiveMinimum"))) is not None:
        low = exclusive + nudge
    high = _number(prop.get("maximum"))
    if high is None and (exclusive := _number(prop.get("exclusiveMaximum"))) is not None:
        high = exclusive - nudge
    return low, high


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _step(prop: Schema, kind: Kind) -> str | None:
    if kind not in ("integer", "number"):
        return None
    multiple = _number(prop.get("multipleOf"))
    if multiple is not None:
        return _text(multiple)
    return "1" if kind == "integer" else "any"


def _pattern(prop: Schema) -> str | None:
    pattern = prop.get("pattern")
    return f".*(?:{pattern}).*" if isinstance(pattern, str) else None


def _unset(kind: Kind) -> bool | None:
    return False if kind == "checkbox" else None


def _shown(kind: Kind, value: Any, clock: _Clock) -> str | bool | None:
    """A default as its input takes it."""
    if kind == "checkbox":
        return value is True
    if kind == "list" and isinstance(value, list):
        return "\n".join(_text(item) for item in value)
    if kind == "textarea-json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    if kind in ("datetime-local", "time") and isinstance(value, str):
        return clock.local(kind, value)
    return None if value is None else _text(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# -- reading a form -------------------------------------------------------------
@dataclass(frozen=True)
class _Clock:
    """The zone a browser's date and time inputs are read in, and the date a time is on."""

    tz: tzinfo
    now: datetime | None

    def today(self) -> date:
        return (self.now or datetime.now(UTC)).astimezone(self.tz).date()

    def aware(self, kind: Kind, raw: str) -> str:
        """An input's value with the offset the schema's formats require."""
        if kind == "time":
            read = time.fromisoformat(raw)
            if read.tzinfo is None:  # a zone's offset depends on the day: today's
                offset = datetime.combine(self.today(), read, self.tz).utcoffset()
                read = read.replace(tzinfo=timezone(offset or timedelta(0)))
            return read.isoformat()
        moment = datetime.fromisoformat(raw)
        return (moment if moment.tzinfo else moment.replace(tzinfo=self.tz)).isoformat()

    def local(self, kind: Kind, value: str) -> str:
        """A stored time as the browser's input shows it (in ``tz``, without an offset)."""
        try:
            if kind == "time":
                read = time.fromisoformat(value.upper().replace("Z", "+00:00"))
                moment = datetime.combine(self.today(), read)
            else:
                moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError:
            return value  # the schema's check refuses it, not the form
        if moment.tzinfo is not None:
            moment = moment.astimezone(self.tz)
        shown = moment.replace(tzinfo=None).isoformat(timespec="seconds")
        return shown.partition("T")[2] if kind == "time" else shown


def _read(prop: Schema, values: list[str], clock: _Clock) -> Any:
    kind = kind_of(prop)
    if kind == "checkbox":
        return any(value.strip().lower() not in FALSE for value in values)
    if kind == "list":
        return _list(prop, values)
    raw = values[-1] if values else ""
    if not raw.strip():
        return OMITTED
    return _READERS[kind](prop, raw, clock)


def _list(prop: Schema, values: list[str]) -> Any:
    lines = [line.strip() for value in values for line in value.splitlines()]
    items = [line for line in lines if line]
    if not items:
        return OMITTED
    read = _SCALAR_READERS[_items_type(prop) or "string"]
    parsed = []
    for number, item in enumerate(items, 1):
        try:
            parsed.append(read(item))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
    return parsed


def _integer(raw: str) -> int:
    text = raw.strip()
    if INTEGER.fullmatch(text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value.is_integer():
        raise ValueError("must be a whole number")
    return int(value)


def _float(raw: str) -> int | float:
    text = raw.strip()
    if INTEGER.fullmatch(text):
        return int(text)  # as typed: 3, not 3.0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError("must be a number")
    return value


def _boolean(raw: str) -> bool:
    text = raw.strip().lower()
    if text not in ("true", "false"):
        raise ValueError("must be true or false")
    return text == "true"


def _date(_: Schema, raw: str, __: _Clock) -> str:
    try:
        date.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError("must be a date (YYYY-MM-DD)") from None
    return raw.strip()


def _moment(kind: Kind) -> Callable[[Schema, str, _Clock], str]:
    what = "a time (HH:MM)" if kind == "time" else "a date and time (YYYY-MM-DDTHH:MM)"

    def read(_: Schema, raw: str, clock: _Clock) -> str:
        try:
            return clock.aware(kind, raw.strip())
        except ValueError:
            raise ValueError(f"must be {what}") from None

    return read


def _select(prop: Schema, raw: str, _: _Clock) -> Any:
    choices = {_text(value): value for value in prop["enum"]}
    if raw not in choices:
        raise ValueError("must be one of: " + ", ".join(choices))
    return choices[raw]


def _json(_: Schema, raw: str, __: _Clock) -> Any:
    try:
        return read_json(raw)
    except ValueError as exc:
        raise ValueError(f"must be JSON: {exc}") from None


_SCALAR_READERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "integer": _integer,
    "number": _float,
    "boolean": _boolean,
}
_READERS: dict[str, Callable[[Schema, str, _Clock], Any]] = {
    "text": lambda _, raw, __: raw,
    "integer": lambda _, raw, __: _integer(raw),
    "number": lambda _, raw, __: _float(raw),
    "date": _date,
    "datetime-local": _moment("datetime-local"),
    "time": _moment("time"),
    "select": _select,
    "textarea-json": _json,
}
