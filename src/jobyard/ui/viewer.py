"""Who looks at a page: the session (or other credentials) checked, or off to the login page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from anyio import to_thread
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasicCredentials

from jobyard.access import Principal, Role
from jobyard.api.auth import basic, bearer, cookie, principal
from jobyard.api.resources import get_node
from jobyard.errors import Unauthorized
from jobyard.node import Node


class LoginNeeded(Exception):
    """A page asked for without (valid) credentials: the browser goes to the login page."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


@dataclass(frozen=True)
class Viewer:
    """The person looking at a page, and what the page may offer them."""

    who: Principal

    @property
    def name(self) -> str:
        return self.who.name

    @property
    def role(self) -> Role:
        return self.who.role

    @property
    def operates(self) -> bool:
        """May submit and control jobs, runs, schedules and queues."""
        return self.who.role.allows(Role.OPERATOR)

    @property
    def admin(self) -> bool:
        return self.who.role.allows(Role.ADMIN)

    @property
    def csrf(self) -> str | None:
        return self.who.csrf


async def viewer(
    request: Request,
    node: Annotated[Node, Depends(get_node)],
    password: Annotated[HTTPBasicCredentials | None, Depends(basic)],
    token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    session: Annotated[str | None, Depends(cookie)],
) -> Viewer:
    """The viewer of this request; :class:`LoginNeeded` when there is none.

    For a whole page, it also reads where the page's event stream is to start, before
    the page reads anything the stream updates: an event stored between the two would
    be neither on the page nor in its stream (a job's last progress report, say).
    """
    try:
        found = Viewer(await principal(request, node, password, token, session))
    except Unauthorized as exc:
        raise LoginNeeded(_here(request)) from exc
    if request.method == "GET" and not request.headers.get("HX-Request"):
        request.state.events_after = await to_thread.run_sync(node.store.events.last_event_id)
    return found


Looker = Annotated[Viewer, Depends(viewer)]


def _here(request: Request) -> str:
    """Where the login goes on to: this page; for a form's post, which the browser would
    fetch again with a GET (a 405 for ``/account/password``), the page the form is on, as
    the browser names it (``Referer``), else the home page."""
    if request.method not in ("GET", "HEAD"):
        page = request.headers.get("referer")
        return _path_of(page) if page else "/"
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def to_login(request: Request, exc: LoginNeeded) -> Response:
    """The answer to :class:`LoginNeeded`: a redirect (for htmx, a full-page one)."""
    if request.headers.get("HX-Request"):
        # A fragment's request: send the whole page to the login, back to where it was.
        page = request.headers.get("HX-Current-URL", "/")
        target = "/login?next=" + quote(_path_of(page), safe="/")
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse("/login?next=" + quote(exc.target, safe="/"), status_code=303)


def _path_of(url: str) -> str:
    """The path and query of a full URL (the login takes only local targets)."""
    rest = url.split("://", 1)[-1]
    path = "/" + rest.partition("/")[2]
    return path
