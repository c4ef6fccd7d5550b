"""The problems every operation can answer, written into the OpenAPI document.

FastAPI documents what a route returns when all goes well. What the edge
refuses is the same for every route of a kind, so it is added here by rules
read off each operation rather than by hand on each route:

- 400: a body that is not JSON, or a ``Last-Event-ID`` that is not an event id;
- 401, 403: no or insufficient credentials (all but ``/healthz``; ``/metrics`` too, unless
  the configuration makes it public; ``/login`` for a wrong password or a foreign page);
- 404: an id or name in the path that names nothing;
- 409: a change the resource's current state forbids (any POST, PUT or DELETE);
- 413: a body over the size limit;
- 415: a body sent without a JSON ``Content-Type`` (where JSON is the only kind taken);
- 422: a parameter or body field that fails validation;
- 429: too many failed logins (a password checked on any route but ``/healthz``);
- 503: the database is unavailable, or the server sheds load (all but ``/healthz``).

Each is an ``application/problem+json`` body of the ``Problem`` schema.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from jobyard.api.problems import PROBLEM, Problem

Document = dict[str, Any]
PUBLIC = frozenset({"/healthz", "/readyz"})  # answer without credentials, check none
NO_DATABASE = frozenset({"/healthz"})
WRITES = frozenset({"post", "put", "patch", "delete"})
SCHEMAS = "#/components/schemas/"
# FastAPI's own 422 body, which this API never sends (its 422 is a problem).
FASTAPI_422 = ("HTTPValidationError", "ValidationError")


def problem_statuses(path: str, method: str, operation: Document) -> list[int]:
    """The problem statuses ``operation`` (``method`` on ``path``) can answer."""
    parameters = operation.get("parameters", [])
    where = {parameter["in"] for parameter in parameters}
    body = "requestBody" in operation
    media = set(operation.get("requestBody", {}).get("content", {}))
    rules = {
        400: body or "header" in where,
        401: path not in PUBLIC,
        403: path not in PUBLIC,
        404: "path" in where,
        409: method in WRITES,
        413: body,
        415: media == {"application/json"},
        422: body or bool(parameters),
        429: path not in PUBLIC,
        503: path not in NO_DATABASE,
    }
    return [status for status, applies in rules.items() if applies]


def add_problems(document: Document) -> Document:
    """Add to each operation of ``document`` the problems it can answer (in place)."""
    reference = {"$ref": f"{SCHEMAS}Problem"}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in problem_statuses(path, method, operation):
                answer = responses.setdefault(str(status), {})
                answer.setdefault("description", HTTPStatus(status).phrase)
                # A route's own answers for the status stay (the login page's HTML 401);
                # FastAPI's own 422 body does not, as this API never sends it.
                kept = {} if status == 422 else answer.get("content", {})
                answer["content"] = kept | {PROBLEM: {"schema": reference}}
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_422:
        schemas.pop(name, None)
    problem = Problem.model_json_schema(ref_template=SCHEMAS + "{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    return document


def document_problems(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document list the problems of every operation."""
    build: Callable[[], Document] = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is None:
            app.openapi_schema = add_problems(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
