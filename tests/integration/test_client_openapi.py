"""The client's models against the real server's ``/openapi.json``: they cannot drift apart.

Each model is paired with the operation whose answer it parses. Every field of
the model (and of the models inside it) must be a property of that answer's
schema, with a type that holds every value the schema allows (a ``str | None``
for a nullable string, a float for an integer …), and every property the
schema requires must be a field of the model.
"""

from __future__ import annotations

import dataclasses
import types
from datetime import datetime
from typing import Any, Union, get_args, get_origin, get_type_hints

import pytest

from jobyard.client import models
from tests.harness import Server, shared_server

server = shared_server(backends=["sqlite"])

Schema = dict[str, Any]
OPERATIONS: list[tuple[type[Any], str, str]] = [
    (models.JobInfo, "get", "/api/v1/jobs/{job_id}"),
    (models.JobPage, "get", "/api/v1/jobs"),
    (models.LogPage, "get", "/api/v1/jobs/{job_id}/logs"),
    (models.JobTypeInfo, "get", "/api/v1/job-types/{name}"),
    (models.WorkerStatus, "get", "/api/v1/workers/{name}"),
    (models.NotificationPage, "get", "/api/v1/notifications"),
    (models.Me, "get", "/api/v1/me"),
    (models.UserInfo, "patch", "/api/v1/users/{name}"),
    (models.TokenInfo, "delete", "/api/v1/tokens/{token_id}"),
    (models.AuditPage, "get", "/api/v1/audit"),
]
_JSON_TYPES = {
    int: {"integer"},
    float: {"number", "integer"},
    str: {"string"},
    bool: {"boolean"},
    datetime: {"string"},
    dict: {"object"},
    list: {"array"},
}


@pytest.fixture(scope="module")
def document(server: Server) -> Schema:
    answer = server.client.get("/openapi.json")
    answer.raise_for_status()
    found: Schema = answer.json()
    return found


@pytest.mark.parametrize(
    ("model", "method", "path"), OPERATIONS, ids=[m.__name__ for m, _, _ in OPERATIONS]
)
def test_a_model_matches_the_schema_of_its_answer(
    document: Schema, model: type[Any], method: str, path: str
) -> None:
    responses = document["paths"][path][method]["responses"]
    success = next(status for status in responses if status.startswith("2"))
    schema = responses[success]["content"]["application/json"]["schema"]
    assert mismatches(document, model, schema, model.__name__) == []


def test_the_checker_sees_a_missing_field_and_a_wrong_type(document: Schema) -> None:
    @dataclasses.dataclass
    class Drifted:
        id: str  # an integer on the server
        gone: int  # not sent at all

    schema = document["paths"]["/api/v1/me"]["get"]["responses"]["200"]["content"]
    found = mismatches(document, Drifted, schema["application/json"]["schema"], "Drifted")
    assert any("gone" in problem for problem in found)
    assert any("missing fields" in problem for problem in found)


def mismatches(document: Schema, model: type[Any], schema: Schema, where: str) -> list[str]:
    """What in ``model`` disagrees with ``schema`` (empty: nothing)."""
    schema = resolve(document, schema)
    properties: dict[str, Schema] = schema.get("properties", {})
    hints = get_type_hints(model)
    fields = {f.name for f in dataclasses.fields(model)}
    problems = [
        f"{where}: missing fields the schema requires: {sorted(missing)}"
        for missing in [set(schema.get("required", [])) - fields]
        if missing
    ]
    for name in sorted(fields):
        if name not in properties:
            problems.append(f"{where}.{name}: not in the schema")
            continue
        problems += type_mismatches(document, hints[name], properties[name], f"{where}.{name}")
    return problems


def type_mismatches(document: Schema, hint: Any, schema: Schema, where: str) -> list[str]:
    """Whether the annotation ``hint`` holds every value ``schema`` allows."""
    options = [resolve(document, option) for option in schema.get("anyOf", [schema])]
    allowed, nested = accepted(hint)
    problems = []
    for option in options:
        kind = option.get("type")
        if kind is None:
            continue  # any JSON value: nothing to compare
        if kind not in allowed:
            problems.append(f"{where}: the schema sends {kind}, the model takes {hint}")
        elif nested is not None and kind == "object":
            problems += mismatches(document, nested, option, where)
        elif nested is not None and kind == "array":
            problems += mismatches(document, nested, resolve(document, option["items"]), where)
    return problems


def accepted(hint: Any) -> tuple[set[str], type[Any] | None]:
    """The JSON types an annotation takes, and the client model inside it, if any."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        kinds: set[str] = set()
        nested = None
        for arg in get_args(hint):
            more, inner = accepted(arg)
            kinds |= more
            nested = nested or inner
        return kinds, nested
    if hint is type(None):
        return {"null"}, None
    if hint is Any:
        return {"string", "integer", "number", "boolean", "object", "array", "null"}, None
    if dataclasses.is_dataclass(hint):
        return {"object"}, hint  # type: ignore[return-value]
    if origin is list:
        (item,) = get_args(hint) or (Any,)
        return {"array"}, item if dataclasses.is_dataclass(item) else None
    return _JSON_TYPES.get(origin or hint, set()), None


def resolve(document: Schema, schema: Schema) -> Schema:
    while "$ref" in schema:
        *_, name = schema["$ref"].split("/")
        schema = document["components"]["schemas"][name]
    return schema
