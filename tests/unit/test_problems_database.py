"""A request that finds the database down gets 503 problem details, not a bare 500."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

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


def get(app: FastAPI, path: str) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    return asyncio.run(call())


def test_a_lost_connection_is_a_503_and_a_refused_statement_a_500() -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/gone")
    def gone() -> None:
        raise InterfaceError("SELECT 1", {}, Exception("connection already closed"))

    @app.get("/invalidated")
    def invalidated() -> None:
        raise DBAPIError("SELECT 1", {}, Exception("server closed"), connection_invalidated=True)

    @app.get("/refused")
    def refused() -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    assert get(app, "/gone").status_code == 503
    assert get(app, "/invalidated").status_code == 503
    assert get(app, "/refused").status_code == 500


def test_no_pooled_connection_free_in_time_is_a_503_to_retry() -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/busy")
    def busy() -> None:
        raise PoolTimeout("QueuePool limit of size 5 overflow 10 reached, connection timed out")

    response = get(app, "/busy")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["detail"] == "the database is busy; try again shortly"
