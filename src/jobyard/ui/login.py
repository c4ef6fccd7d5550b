"""The login page (``GET /login``); ``POST /login`` is the API's (:mod:`jobyard.api.session`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from jobyard.ui.render import fragment

router = APIRouter(include_in_schema=False)


def local(target: str) -> str:
    """Only a path on this server: ``next`` must not send the browser elsewhere."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def login_form(next_page: str, message: str = "", status: int = 200) -> HTMLResponse:
    """The login page, going on to ``next_page`` (a local path) after a login."""
    body = fragment("login.html", next=local(next_page), message=message)
    return HTMLResponse(body, status_code=status)


@router.get("/login", response_class=HTMLResponse)
def login_page(next: str = "/") -> HTMLResponse:
    return login_form(next)
