"""Input that no database can store, refused at the edge before any route runs.

JSON and URLs can carry values that pass a type check and then break a
database or a job: a NUL character (PostgreSQL text refuses it), a lone
surrogate such as ``"\\ud800"`` (not Unicode, so not UTF-8), ``NaN`` and
``Infinity`` (Python's JSON parser takes them; SQLite would store null and
a job would ``sleep inf``), integers beyond 64 bits, and trees nested so
deep that walking them exhausts the stack. :func:`refuse_unstorable` looks
at every path and query parameter and every value of a JSON body, at any
depth, and answers 422 naming each bad field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any, TypeVar

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from jobyard.storable import printable, problems
from jobyard.text import text_problem

MAX_ERRORS = 100  # a body full of bad values gets an answer of a readable size
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def reads_own_query(endpoint: Endpoint) -> Endpoint:
    """Mark a page that checks its query itself: it shows the page, saying what it
    ignored (a NUL typed in its search box), where a 422 in JSON would leave a browser
    with no way on. :func:`refuse_unstorable` leaves its query alone."""
    endpoint.reads_own_query = True  # type: ignore[attr-defined]
    return endpoint


async def refuse_unstorable(request: Request) -> None:
    """A dependency of every route: 422 when a parameter or the JSON body holds what
    :func:`problems` finds."""
    errors = [*_parameter_errors(request)]
    await _refuse_other_media(request)
    if await _has_json_body(request):
        found = islice(problems(await request.json()), MAX_ERRORS)
        errors += [_error("body", field, message) for field, message in found]
    if errors:
        raise RequestValidationError(errors[:MAX_ERRORS])


def sent_json(request: Request) -> bool:
    """Whether the request's body is JSON by its ``Content-Type`` (of any case, with
    parameters: ``Application/JSON; charset=utf-8``)."""
    return _is_json(_media(request))


def _parameter_errors(request: Request) -> Iterator[dict[str, Any]]:
    route = request.scope.get("route")
    own = getattr(getattr(route, "endpoint", None), "reads_own_query", False)
    for location, items in (
        ("path", request.path_params.items()),
        ("query", [] if own else request.query_params.multi_items()),
    ):
        for name, value in items:
            message = text_problem(value) if isinstance(value, str) else None
            if message is not None:
                yield _error(location, printable(name), message)


async def _has_json_body(request: Request) -> bool:
    """Whether the route read the body as JSON (it did so before its dependencies ran)."""
    if not _takes_body(request):
        return False
    return _is_json(_media(request)) and bool(await request.body())


async def _refuse_other_media(request: Request) -> None:
    """415 for a body the route does not read as JSON: sent without a JSON
    ``Content-Type`` (``curl -d`` sends a form's), where it would be refused as "not
    an object", which hides why."""
    media = _media(request)
    if not _is_json(media) and _takes_body(request) and await request.body():
        sent = f"not {media}" if media else "no Content-Type was sent"
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"the body must be JSON, sent with Content-Type: application/json ({sent})",
        )


def _takes_body(request: Request) -> bool:
    route = request.scope.get("route")
    return isinstance(route, APIRoute) and route.body_field is not None


def _media(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def _is_json(media: str) -> bool:
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _error(location: str, field: str, message: str) -> dict[str, Any]:
    """An error as pydantic reports one, so that the problem handler lists it like the rest."""
    loc = (location, field) if field else (location,)
    return {"type": "value_error", "loc": loc, "msg": message, "input": None}
