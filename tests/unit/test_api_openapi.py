"""The problems the OpenAPI document lists for each operation, by rules on the operation."""

from __future__ import annotations

from typing import Any

import pytest

from jobyard.api.openapi import add_problems, problem_statuses

PATH_PARAM = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}
QUERY_PARAM = {"name": "page", "in": "query", "schema": {"type": "integer"}}
HEADER_PARAM = {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}}
BODY = {"content": {"application/json": {"schema": {}}}}
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("path", "method", "operation", "statuses"),
    [
        ("/healthz", "get", {}, []),
        ("/metrics", "get", {}, [401, 403, 429, 503]),
        ("/api/v1/workers", "get", {}, [401, 403, 429, 503]),
        ("/api/v1/jobs", "get", {"parameters": [QUERY_PARAM]}, [401, 403, 422, 429, 503]),
        (
            "/api/v1/jobs",
            "post",
            {"requestBody": BODY},
            [400, 401, 403, 409, 413, 415, 422, 429, 503],
        ),
        (  # a form is taken too: the login
            "/login",
            "post",
            {"requestBody": {"content": {**BODY["content"], FORM: {"schema": {}}}}},
            [400, 401, 403, 409, 413, 422, 429, 503],
        ),
        (
            "/api/v1/jobs/{job_id}",
            "get",
            {"parameters": [PATH_PARAM]},
            [401, 403, 404, 422, 429, 503],
        ),
        (
            "/api/v1/jobs/{job_id}",
            "delete",
            {"parameters": [PATH_PARAM]},
            [401, 403, 404, 409, 422, 429, 503],
        ),
        ("/api/v1/events", "get", {"parameters": [HEADER_PARAM]}, [400, 401, 403, 422, 429, 503]),
    ],
)
def test_problem_statuses_follow_from_the_operation(
    path: str, method: str, operation: dict[str, Any], statuses: list[int]
) -> None:
    assert problem_statuses(path, method, operation) == statuses


def test_the_document_names_the_problem_schema_and_drops_fastapis_own_422() -> None:
    fastapi_422 = {"$ref": "#/components/schemas/HTTPValidationError"}
    document: dict[str, Any] = {
        "paths": {
            "/api/v1/jobs/{job_id}": {
                "get": {
                    "parameters": [PATH_PARAM],
                    "responses": {
                        "200": {"description": "OK"},
                        "422": {"content": {"application/json": {"schema": fastapi_422}}},
                    },
                }
            }
        },
        "components": {"schemas": {"HTTPValidationError": {}, "ValidationError": {}}},
    }
    add_problems(document)
    responses = document["paths"]["/api/v1/jobs/{job_id}"]["get"]["responses"]
    assert sorted(responses) == ["200", "401", "403", "404", "422", "429", "503"]
    assert responses["404"]["description"] == "Not Found"
    for status in ("401", "403", "404", "422", "503"):
        assert responses[status]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"title", "status", "detail"}
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/FieldProblem"}
    assert schemas["FieldProblem"]["required"] == ["field", "message"]
