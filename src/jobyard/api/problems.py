"""RFC 9457 problem details for every error, and the request body size limit."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobyard.api.methods import allowed
from jobyard.errors import JobyardError, TooManyAttempts, Unauthorized
from jobyard.store.outage import unavailable

PROBLEM = "application/problem+json"
log = logging.getLogger(__name__)


class FieldProblem(BaseModel):
    """One bad field of the input."""

    model_config = ConfigDict(extra="allow")

    field: str = Field(description="dotted path of the field ('': the whole input)")
    message: str
    location: str | None = Field(default=None, description="body, query, path or header")


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong; ``errors`` names every bad field.

    Some problems say more: a conflict gives the resource's current ``state``.
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="a URI naming the problem type")
    title: str = Field(description="the HTTP status phrase")
    status: int
    detail: str = Field(description="what went wrong, for people")
    instance: str | None = Field(default=None, description="the request path")
    errors: list[FieldProblem] = Field(default_factory=list, description="the bad fields")


class ProblemResponse(JSONResponse):
    media_type = PROBLEM

    def render(self, content: Any) -> bytes:
        # A detail may quote the input back, and input may hold a lone surrogate,
        # which UTF-8 cannot encode: written as the JSON escape \udxxx instead.
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


def problem(
    status: int, detail: str, request: Request | None = None, **extra: Any
) -> ProblemResponse:
    instance = None if request is None else request.url.path
    body = problem_body(status, detail, instance, **extra)
    return ProblemResponse(body, status_code=status)


def problem_body(
    status: int, detail: str, instance: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The JSON of a problem (RFC 9457); ``instance`` is the path it is about."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    return body


def install(app: FastAPI) -> None:
    app.add_exception_handler(JobyardError, _domain)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(405, _not_allowed)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _database)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, _pool_timeout)  # type: ignore[arg-type]


async def _domain(request: Request, exc: JobyardError) -> JSONResponse:
    response = problem(exc.status, exc.detail, request, **exc.extra)
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Basic realm="jobyard", charset="UTF-8"'
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _http(request: Request, exc: HTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    response = problem(exc.status_code, detail, request)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _not_allowed(request: Request, exc: HTTPException) -> JSONResponse:
    """The path exists, not with this method: ``Allow`` names every method it has."""
    # The router raised it with the methods of the first route on the path; a mount, its own.
    own = [method.strip() for method in (exc.headers or {}).get("Allow", "").split(",")]
    allow = ", ".join(allowed(request, filter(None, own)))
    detail = f"{request.method} is not one of this path's methods: {allow}"
    response = problem(405, detail, request)
    response.headers["Allow"] = allow
    return response


async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
    if not unavailable(exc):
        raise exc  # a bug, not an outage: a 500 with its traceback
    # The database is down or restarting (or, on MariaDB, a deadlock victim): the
    # client may try again, and a traceback per request would drown the log.
    log.warning("database unavailable", extra={"path": request.url.path, "error": str(exc.orig)})
    return try_again(request, "the database is unavailable; try again shortly")


async def _pool_timeout(request: Request, exc: PoolTimeout) -> JSONResponse:
    """No pooled connection came free in time: every one is held by a statement the
    database is slow to answer (or does not). The client may try again."""
    log.warning("no database connection free", extra={"path": request.url.path})
    return try_again(request, "the database is busy; try again shortly")


def try_again(request: Request, detail: str) -> ProblemResponse:
    """A 503 the client may retry in a second: the database is away or busy."""
    response = problem(503, detail, request)
    response.headers["Retry-After"] = "1"
    return response


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [_field_error(error) for error in exc.errors()]
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        detail = "the request body is not valid JSON: " + errors[0]["message"]
        return problem(400, detail, request, errors=errors)
    fields = ", ".join(e["field"] or e["location"] for e in errors)
    return problem(422, f"invalid request: {fields}", request, errors=errors)


def _field_error(error: Any) -> dict[str, str]:
    location, *path = [str(part) for part in error.get("loc", ())] or ["body"]
    if error.get("type") == "json_invalid":  # its "field" is where the parser stopped
        reason = error.get("ctx", {}).get("error", error.get("msg"))
        at = f" at character {path[0]}" if path else ""
        return {"location": location, "field": "", "message": f"{reason}{at}"}
    # A validator's own ValueError reads as pydantic prefixes it: "Value error, …".
    message = str(error.get("msg")).removeprefix("Value error, ")
    return {"location": location, "field": ".".join(path), "message": message}


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before the app reads them, and
    bodies that have not arrived whole within ``deadline`` seconds with 408: a client that
    sends its headers and then a byte now and then would hold a request's place (and
    the load shedding's count) for as long as it liked. Once the body is in, waiting on
    the connection (an event stream listening for the client's leaving) has no deadline."""

    def __init__(self, app: ASGIApp, limit: int, deadline: float) -> None:
        self.app = app
        self.limit = limit
        self.deadline = deadline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen, whole, until = 0, False, 0.0

        async def limited() -> Message:
            nonlocal seen, whole, until
            if whole:
                return await receive()
            until = until or anyio.current_time() + self.deadline  # from the first read
            with anyio.move_on_after(until - anyio.current_time()) as late:
                message = await receive()
            if late.cancelled_caught:
                raise HTTPException(
                    408, f"the request body did not arrive within {self.deadline:g} s"
                )
            whole = message["type"] != "http.request" or not message.get("more_body", False)
            seen += len(message.get("body", b""))
            if seen > self.limit:  # a body without (or lying about) Content-Length
                raise HTTPException(413, self._detail())
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await problem(413, self._detail(), Request(scope))(scope, receive, send)

    def _detail(self) -> str:
        return f"the request body is larger than {self.limit} bytes"
