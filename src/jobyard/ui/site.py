"""The UI added to an app: its page routers, its static files and the way to the login."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from jobyard.ui import account, admin, dashboard, docs, jobs, login, submit, types, workflows
from jobyard.ui.render import STATIC
from jobyard.ui.viewer import LoginNeeded, to_login

#: The page routers; each page checks its viewer itself (:data:`jobyard.ui.viewer.Looker`).
ROUTERS: tuple[APIRouter, ...] = (
    login.router,
    dashboard.router,
    jobs.router,
    submit.router,
    admin.router,
    types.router,
    workflows.router,
    docs.router,
    account.router,
)


def install(app: FastAPI) -> None:
    """Serve the pages at ``/``, ``/jobs`` … and the static files at ``/static``."""
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/favicon.ico", _icon, include_in_schema=False)
    app.add_exception_handler(LoginNeeded, to_login)  # type: ignore[arg-type]


async def _icon() -> FileResponse:
    """Browsers ask for it whatever the page says."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")
