"""The FastAPI application of one node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from jobyard import __version__, metrics
from jobyard.access import Role
from jobyard.api import (
    actions,
    audit,
    health,
    job_types,
    jobs,
    notifications,
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
from jobyard.api.auth import require
from jobyard.node import Node

V, OP, A = Role.VIEWER, Role.OPERATOR, Role.ADMIN

#: Every router with the role its reads need and the role its changes need. Public
#: routes (``/healthz``, ``/login``) are the ones listed with ``None``.
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
        docs_url=None,  # re-added below with assets served from here, not from a CDN
        redoc_url=None,
    )
    app.state.node = node
    problems.install(app)
    for router, read, write in ROUTERS:
        if router is health.metrics_router and node.config.metrics_public:
            read = write = None
        guard = [Depends(require(read, write))] if read and write else []
        app.include_router(router, dependencies=guard)
    _add_docs(app)
    # Imported here: the pages import the API's guard, and so the API package itself.
    from jobyard.ui import site

    site.install(app)
    app.add_middleware(trail.AuditTrail, audit=node.audit)
    app.add_middleware(problems.BodyLimit, limit=node.settings.max_body_bytes)
    _add_shedding(app, node)
    if node.config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(node.config.cors_origins),
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    return app


def _add_shedding(app: FastAPI, node: Node) -> None:
    """Outermost but for CORS: a refused request costs no authentication nor audit."""
    shed = shedding.Shed()
    node.metrics.register(metrics.ShedCollector(shed.snapshot))
    app.add_middleware(
        shedding.LoadShedding,
        max_requests=node.settings.max_requests,
        max_streams=node.settings.max_streams,
        shed=shed,
    )


def _add_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` and ReDoc at ``/redoc``, working with no internet."""
    vendor = "/static/vendor"

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="jobyard API",
            swagger_js_url=f"{vendor}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{vendor}/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            # No badge from the validator's host: the page asks nothing of another host.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="jobyard API",
            redoc_js_url=f"{vendor}/redoc/redoc.standalone.js",
            redoc_favicon_url="/static/favicon.svg",
            with_google_fonts=False,
        )
