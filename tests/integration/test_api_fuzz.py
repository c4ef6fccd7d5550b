"""Fuzzing the HTTP API from its own OpenAPI document, against a real server.

Schemathesis reads ``/openapi.json`` and, for every operation, generates
requests that fit the document and requests that break it. Each answer must be
no server error, with a documented status code and content type and a body
that matches the documented schema. Every operation runs, DELETE and kill
included: the server is the module's own. The examples are bounded and
derandomized, so a run is reproducible and takes well under a minute per backend
(``JOBYARD_FUZZ_EXAMPLES`` searches deeper).

The default run fuzzes the server on SQLite only: the API answers the same on every
backend, and the store's own differences are the contract suite's to find.
``JOBYARD_FUZZ_BACKENDS`` (comma-separated: ``sqlite,postgres,mariadb``) chooses
others; ``make fuzz`` runs all three.

The operations are driven through their Hypothesis strategies rather than
``schemathesis.pytest.from_fixture``, whose lazy loader does not run under this
pytest; requests go through the server fixture's own client, so the credentials
it carries (and ``AUTH_HEADERS``) go with every request.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.databases import BACKENDS
from tests.harness import Server, shared_server

# Headers for every request (the server fixture's client carries the admin's credentials).
AUTH_HEADERS: dict[str, str] = {}
# Per operation, valid and invalid requests together; raise it for a deeper search.
EXAMPLES = int(os.environ.get("JOBYARD_FUZZ_EXAMPLES", "50"))
CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EVENT_STREAM = "text/event-stream"
FUZZ_BACKENDS = os.environ.get("JOBYARD_FUZZ_BACKENDS", "sqlite").split(",")
_unknown = set(FUZZ_BACKENDS) - {backend.values[0] for backend in BACKENDS}
assert not _unknown, f"JOBYARD_FUZZ_BACKENDS: no backend {sorted(_unknown)}"

server = shared_server(backends=[b for b in BACKENDS if b.values[0] in FUZZ_BACKENDS])


@pytest.fixture(scope="module")
def api_schema(server: Server) -> BaseSchema:
    """The server's own OpenAPI document, fetched as any client would."""
    document = server.client.get("/openapi.json", headers=AUTH_HEADERS)
    assert document.status_code == 200, document.text
    config = schemathesis.Config.from_dict({"base-url": server.url, "cache": {"enabled": False}})
    return schemathesis.openapi.from_dict(document.json(), config=config)


def test_every_answer_is_documented_and_no_server_error(
    server: Server, api_schema: BaseSchema
) -> None:
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        try:
            fuzz(server.client, operation)
        except (Exception, FailureGroup) as error:  # every operation runs; all failures show
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)


def test_without_credentials_every_answer_is_documented_and_no_server_error(
    server: Server, api_schema: BaseSchema
) -> None:
    failures = []
    with httpx.Client(base_url=server.url, timeout=30) as stranger:
        for result in api_schema.get_all_operations():
            operation = result.ok()
            try:
                fuzz(stranger, operation, examples=max(EXAMPLES // 5, 5))
            except (Exception, FailureGroup) as error:
                failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)


def fuzz(client: httpx.Client, operation: APIOperation, examples: int = EXAMPLES) -> None:
    """Send valid and invalid requests for ``operation``; raise on the first bad answer."""
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @given(case=cases)
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_well(case: Case) -> None:
        case.validate_response(send(client, case), checks=CHECKS, headers=AUTH_HEADERS)

    answers_well()


def send(client: httpx.Client, case: Case) -> httpx.Response:
    """Send ``case`` with the server's own client; an event stream is read up to its headers.

    A stream answers at once and may never end (``/api/v1/events``): its status,
    headers and content type are what is checked, so it is closed right away.
    """
    request = client.build_request(**_request_kwargs(case))
    response = client.send(request, stream=True)
    if not response.headers.get("content-type", "").startswith(EVENT_STREAM):
        response.read()
        return response
    response.close()
    headers_only = httpx.Response(
        response.status_code, headers=response.headers, content=b"", request=request
    )
    headers_only.elapsed = response.elapsed
    return headers_only


def _request_kwargs(case: Case) -> dict[str, Any]:
    """``case`` as arguments of ``httpx.Client.build_request`` (schemathesis speaks requests)."""
    kwargs = case.as_transport_kwargs(headers=AUTH_HEADERS)
    built: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": kwargs.get("headers") or {},
        "params": kwargs.get("params"),
    }
    if "json" in kwargs:
        built["json"] = kwargs["json"]
    elif isinstance(kwargs.get("data"), dict):  # a form (POST /login)
        built["data"] = kwargs["data"]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        built["content"] = data.encode() if isinstance(data, str) else data
    return built
