"""A request that finds the database down gets 503 problem details, not a bare 500."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from jobyard.api import problems


def test_a_database_outage_is_a_503_problem_to_retry() -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/jobs")
    def jobs() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/jobs")

    response = asyncio.run(get())
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["detail"] == "the database is unavailable; try again shortly"
    assert response.json()["instance"] == "/jobs"
