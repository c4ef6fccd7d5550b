"""Field types of the ``notifications:`` section: addresses, URLs, headers, names, events.

Each is a pydantic ``Annotated`` type whose validator raises ``ValueError`` with the
one-line message the loader shows next to the field. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

from jobyard.durations import Duration
from jobyard.jobtypes.params import PARAM_NAME
from jobyard.jobtypes.spec import NAME_RE
from jobyard.spelling import did_you_mean

JOB_EVENTS = ("failed", "succeeded", "sla_breach", "upstream_failed", "worker_lost")
WORKFLOW_EVENTS = ("workflow_failed", "workflow_succeeded")
EVENTS = JOB_EVENTS + WORKFLOW_EVENTS

_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RESERVED_HEADERS = ("content-type", "content-length", "host", "user-agent")
_CONTENT_TYPE = re.compile(r"[\w.+-]+/[\w.+-]+(;[^\r\n]*)?")


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _address(value: str) -> str:
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"not an email address: {value!r}")
    return value


def _event(value: str) -> str:
    if value not in EVENTS:
        hint = did_you_mean(value, EVENTS, f"; known: {', '.join(EVENTS)}")
        raise ValueError(f"unknown event {value!r}{hint}")
    return value


def _env_name(value: str) -> str:
    if not PARAM_NAME.fullmatch(value):
        raise ValueError("not a valid environment variable name")
    return value


def _web_url(value: str) -> str:
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ValueError(f"not an http(s) URL: {value!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", value):
        raise ValueError(f"not an http(s) URL: {value!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("no credentials in the URL: sign with secret_env instead")
    return value


def _amqp_url(value: str) -> str:
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ValueError(f"not an amqp(s) URL: {value!r}") from None
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname or re.search(r"\s", value):
        raise ValueError(f"not an amqp(s) URL: {value!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("no credentials in the URL: give user and password_env instead")
    return value


def _content_type(value: str) -> str:
    if not _CONTENT_TYPE.fullmatch(value):
        raise ValueError(f"not a media type such as application/json: {value!r}")
    return value


def _header(value: str) -> str:
    if not _HEADER.fullmatch(value):
        raise ValueError(f"not a valid header name: {value!r}")
    if value.lower() in _RESERVED_HEADERS or value.lower().startswith("x-jobyard-"):
        raise ValueError(f"{value} is set by jobyard")
    return value


def _header_value(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("a header value is one line")
    return value


def _name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError("use 1-100 letters, digits, '_', '.' or '-', starting alphanumeric")
    return value


Address = Annotated[str, AfterValidator(_address)]
Addresses = Annotated[tuple[Address, ...], BeforeValidator(_listify)]
EnvName = Annotated[str, AfterValidator(_env_name)]
WebUrl = Annotated[str, AfterValidator(_web_url)]
AmqpUrl = Annotated[str, AfterValidator(_amqp_url)]
ContentType = Annotated[str, AfterValidator(_content_type)]
Names = Annotated[tuple[Annotated[str, AfterValidator(_name)], ...], BeforeValidator(_listify)]
Timeout = Annotated[Duration, Field(gt=0)]
HeaderName = Annotated[str, AfterValidator(_header)]
HeaderValue = Annotated[str, AfterValidator(_header_value)]
Events = Annotated[tuple[Annotated[str, AfterValidator(_event)], ...], BeforeValidator(_listify)]
