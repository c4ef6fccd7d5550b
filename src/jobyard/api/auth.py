"""Who is asking, and may they: authentication and role checks for every route.

A request proves who it is with HTTP Basic (name and password), a bearer token,
or the browser's session cookie. A request made with the cookie that changes
something must also carry the session's CSRF token in ``X-CSRF-Token``: another
site can make a browser send the cookie, but it cannot read the token.

The routers are guarded where the app includes them (:data:`jobyard.api.app.ROUTERS`):
reads need ``viewer`` (or more), changes the router's role. So a new route is
guarded the moment it is added to a router.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated

from anyio import to_thread
from fastapi import Depends, Request
from fastapi.security import (
    APIKeyCookie,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)

from jobyard.access import Principal, Role
from jobyard.api.resources import get_node
from jobyard.errors import Forbidden, Unauthorized
from jobyard.node import Node

COOKIE = "jobyard_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

basic = HTTPBasic(
    auto_error=False, scheme_name="password", description="a user's name and password"
)
bearer = HTTPBearer(
    auto_error=False, scheme_name="token", description="an API token (`POST /api/v1/tokens`)"
)
cookie = APIKeyCookie(
    name=COOKIE,
    scheme_name="session",
    auto_error=False,
    description=f"the browser session of `POST /login`; changes need the `{CSRF_HEADER}` header",
)


async def principal(
    request: Request,
    node: Annotated[Node, Depends(get_node)],
    password: Annotated[HTTPBasicCredentials | None, Depends(basic)],
    token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    session: Annotated[str | None, Depends(cookie)],
) -> Principal:
    """Who makes the request (401 when nobody, or nobody known)."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):  # already checked by another dependency
        return known
    gate = node.gate
    check: Callable[[], Principal]
    if password is not None:
        check = partial(gate.password, password.username, password.password, address(request))
    elif token is not None:
        check = partial(gate.token, token.credentials)
    elif session is not None:
        check = partial(gate.session, session)
    else:
        raise Unauthorized("authentication required: HTTP Basic, a bearer token or a session")
    who = await to_thread.run_sync(check)
    if who.via == "session" and request.method not in SAFE_METHODS:
        _check_csrf(request, who)
    request.state.principal = who
    return who


Caller = Annotated[Principal, Depends(principal)]


def require(read: Role, write: Role) -> Callable[[Request, Principal], Awaitable[None]]:
    """A dependency: reads need ``read``, changes need ``write`` (403 otherwise)."""

    async def allowed(request: Request, who: Caller) -> None:
        needed = read if request.method in SAFE_METHODS else write
        if not who.role.allows(needed):
            raise Forbidden(f"this needs the {needed} role; {who.name} acts as {who.role}")

    return allowed


def address(request: Request) -> str:
    """The client's address as the server saw it (a proxy's, behind one)."""
    return request.client.host if request.client else ""


def _check_csrf(request: Request, who: Principal) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    if not who.csrf or not hmac.compare_digest(sent.encode(), who.csrf.encode()):
        raise Forbidden(f"a change made with the session cookie needs the {CSRF_HEADER} header")
