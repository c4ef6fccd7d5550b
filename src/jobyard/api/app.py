"""The FastAPI application of one node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import Depends, FastAPI

from jobyard import __version__
from jobyard.api import (
    health,
    inputs,
    job_types,
    jobs,
    notifications,
    openapi,
    problems,
    queues,
    samples,
    schedules,
    streams,
    workers,
    workflows,
)
from jobyard.node import Node

ROUTERS = (
    health.router,
    jobs.router,
    samples.router,
    streams.router,
    job_types.router,
    workflows.router,
    queues.router,
    schedules.router,
    notifications.router,
    workers.router,
)


def create_app(node: Node, *, manage_node: bool = True) -> FastAPI:
    """The app serving ``node``; with ``manage_node`` its lifespan starts and stops it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_node:
            await to_thread.run_sync(node.start)
        try:
            yield
        finally:
            if manage_node:
                await to_thread.run_sync(node.stop)

    app = FastAPI(
        title="jobyard",
        version=__version__,
        summary="Submit, watch and control batch jobs.",
        lifespan=lifespan,
        dependencies=[Depends(inputs.refuse_unstorable)],
    )
    app.state.node = node
    problems.install(app)
    openapi.document_problems(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(problems.BodyLimit, limit=node.settings.max_body_bytes)
    return app
