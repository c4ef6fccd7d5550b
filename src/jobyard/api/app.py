"""The FastAPI application of one node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from jobyard import __version__, metrics
from jobyard.access import Role
from jobyard.api import (
    actions,
    audit,
    headers,
    health,
    inputs,
    job_types,
    jobs,
    methods,
    notifications,
    observe,
    openapi,
    problems,
    queues,
    samples,
    schedules,
    session,
    shedding,
    streams,
    tokens,
    trail,
    users,
    workers,
    workflows,
)
from jobyard.api.auth import principal, require
from jobyard.node import Node

V, OP, A = Role.VIEWER, Role.OPERATOR, Role.ADMIN

#: Every router with the role its reads need and the role its changes need. Public
#: routes (``/healthz``, ``/login``) are the ones listed with ``None``. The pages
#: (:mod:`jobyard.ui`) and ``/openapi.json`` check their viewer themselves.
ROUTERS: tuple[tuple[APIRouter, Role | None, Role | None], ...] = (
    (health.router, None, None),
    (session.router, None, None),
    (health.metrics_router, V, V),
    (jobs.router, V, OP),
    (actions.router, V, OP),  # POST /api/v1/jobs/actions: no /{job_id} route takes it
    (samples.router, V, OP),
    (streams.router, V, OP),
    (job_types.router, V, A),
    (workflows.router, V, OP),
    (queues.router, V, OP),
    (schedules.router, V, OP),
    (notifications.router, V, A),
    (workers.router, V, A),
    (users.me_router, V, V),
    (tokens.router, V, V),  # each their own; Accounts lets only admins touch others'
    (users.router, A, A),
    (audit.router, A, A),
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
        # Added with the others' guards: /openapi.json below, /docs and /redoc with the UI.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(inputs.refuse_unstorable)],
    )
    app.state.node = node
    problems.install(app)
    openapi.document_problems(app)
    for router, read, write in ROUTERS:
        if router is health.metrics_router and node.config.metrics_public:
            read = write = None
        guard = [Depends(require(read, write))] if read and write else []
        app.include_router(router, dependencies=guard)
    _add_openapi(app)
    # Imported here: the pages import the API's guard, and so the API package itself.
    from jobyard.ui import site

    site.install(app)
    app.add_middleware(trail.AuditTrail, audit=node.audit)
    app.add_middleware(
        problems.BodyLimit,
        limit=node.settings.max_body_bytes,
        deadline=node.settings.body_timeout,
    )
    _add_shedding(app, node)
    # Outside the shedding: a refused request is counted too.
    app.add_middleware(observe.ObserveRequests, metrics=observe.RequestMetrics(node.metrics))
    if node.config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(node.config.cors_origins),
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(headers.SecurityHeaders)  # on every answer, a refusal's too
    # Outermost: every layer and route serves a HEAD as the GET it mirrors.
    app.add_middleware(methods.HeadAsGet)
    return app


def _add_shedding(app: FastAPI, node: Node) -> None:
    """Outermost but for CORS: a refused request costs no authentication nor audit."""
    shed = shedding.Shed()
    app.state.shed = shed  # a route that will answer with a stream asks it for room
    node.metrics.register(metrics.ShedCollector(shed.snapshot))
    app.add_middleware(
        shedding.LoadShedding,
        max_requests=node.settings.max_requests,
        max_streams=node.settings.max_streams,
        shed=shed,
    )


def _add_openapi(app: FastAPI) -> None:
    """``/openapi.json`` for anyone signed in; the pages that show it are the UI's."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(principal)])
    def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())
