"""The login page (``GET /login``); ``POST /login`` is the API's (:mod:`jobyard.api.session`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from jobyard.ui.render import fragment

router = APIRouter(include_in_schema=False)


def local(target: str) -> str:
    """Only a path on this server: ``next`` must not send the browser elsewhere.

    Browsers read a backslash as a slash and drop tabs and newlines, so ``/\\host``
    or ``/<tab>/host`` would be ``//host``, another site: a target with any of them
    is refused rather than cleaned.
    """
    parts = urlsplit(target)
    odd = "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    if odd or parts.scheme or parts.netloc or not target.startswith("/") or target[1:2] == "/":
        return "/"
    return target


def login_form(
    next_page: str, message: str = "", status: int = 200, username: str = ""
) -> HTMLResponse:
    """The login page, going on to ``next_page`` (a local path) after a login."""
    body = fragment("login.html", next=local(next_page), message=message, username=username)
    return HTMLResponse(body, status_code=status)


@router.get("/login", response_class=HTMLResponse)
def login_page(next: str = "/") -> HTMLResponse:
    return login_form(next)
