"""Who is asking, and may they: authentication and role checks for every route.

A request proves who it is with HTTP Basic (name and password), a bearer token,
or the browser's session cookie. A request made with the cookie that changes
something must also carry the session's CSRF token in ``X-CSRF-Token``: another
site can make a browser send the cookie, but it cannot read the token.
A change made with HTTP Basic must not come from another site's page (its
``Origin``), since browsers resend a password they were once asked for.

The routers are guarded where the app includes them (:data:`jobyard.api.app.ROUTERS`):
reads need ``viewer`` (or more), changes the router's role. So a new route is
guarded the moment it is added to a router.
"""

from __future__ import annotations

import hmac
from base64 import b64decode
from collections.abc import Awaitable, Callable, Collection
from functools import partial
from typing import Annotated

from anyio import to_thread
from fastapi import Depends, Request, Response
from fastapi.security import (
    APIKeyCookie,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from jobyard.access import Principal, Role
from jobyard.access.gate import SESSION_TTL
from jobyard.api.resources import get_node
from jobyard.errors import Forbidden, Unauthorized
from jobyard.node import Node

COOKIE = "jobyard_session"


def set_session_cookie(response: Response, request: Request, secret: str) -> None:
    """The browser session's cookie: HttpOnly (scripts cannot read it), SameSite=Lax
    (other sites' forms do not send it), Secure over HTTPS, for the session's lifetime."""
    response.set_cookie(
        COOKIE,
        secret,
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Basic(HTTPBasic):
    """HTTP Basic with the UTF-8 our challenge announces (RFC 7617 ``charset="UTF-8"``).

    FastAPI's own decodes ASCII only, so a password with an accent could never
    be sent; and its errors for a malformed header carry no problem detail.
    """

    async def __call__(  # type: ignore[override]
        self, request: HTTPConnection
    ) -> HTTPBasicCredentials | None:
        scheme, param = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "basic":
            return None
        try:
            decoded = b64decode(param, validate=True).decode("utf-8")
        except ValueError as exc:  # not base64 (binascii.Error), not ASCII, not UTF-8
            raise Unauthorized("the Basic credentials are not base64 of UTF-8 text") from exc
        name, colon, password = decoded.partition(":")
        if not colon:
            raise Unauthorized("the Basic credentials must be name:password")
        return HTTPBasicCredentials(username=name, password=password)


basic = Basic(
    auto_error=False, scheme_name="password", description="a user's name and password (UTF-8)"
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
    request.state.principal = who  # known from here: a refusal below is audited as denied
    # An event stream checks the same credentials again (a password without counting,
    # or auditing, a failure: see Gate.password_again).
    request.state.recheck = (
        partial(gate.password_again, password.username, password.password)
        if password is not None
        else check
    )
    if request.method not in SAFE_METHODS:
        if who.via == "session":
            _check_csrf(request, who)
        elif who.via == "password":
            _check_origin(request, node.config.cors_origins)
    return who


Caller = Annotated[Principal, Depends(principal)]


def require(read: Role, write: Role) -> Callable[[Request, Principal], Awaitable[None]]:
    """A dependency: reads need ``read``, changes need ``write`` (403 otherwise)."""

    async def allowed(request: Request, who: Caller) -> None:
        request.state.read_role = read  # what an event stream of this route needs to go on
        needed = read if request.method in SAFE_METHODS else write
        if (refused := refusal(who, needed)) is not None:
            raise refused

    return allowed


def refusal(who: Principal, needed: Role) -> Forbidden | None:
    """Why ``who`` may not do what ``needed`` may (None: they may)."""
    if who.role.allows(needed):
        return None
    return Forbidden(f"this needs the {needed} role; {who.name} acts as {who.role}")


def address(request: Request) -> str:
    """The client's address as the server saw it (a proxy's, behind one)."""
    return request.client.host if request.client else ""


def _check_origin(request: Request, allowed: Collection[str]) -> None:
    """Refuse a change sent with HTTP Basic by another site's page.

    A browser once asked for a password (our 401 challenge) sends it again by
    itself with every request to this server, also with a form another site
    posts here: that is cross-site request forgery without a cookie. Browsers
    say where such a request comes from (``Origin``); scripts send none.
    """
    origin = request.headers.get("origin")
    if (
        origin is None
        or origin in allowed
        or origin == f"{request.url.scheme}://{request.url.netloc}"
    ):
        return
    raise Forbidden(f"a change posted by another site ({origin}) needs a token or a session")


def _check_csrf(request: Request, who: Principal) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    if not who.csrf or not hmac.compare_digest(sent.encode(), who.csrf.encode()):
        said = "does not match the session's" if sent else "is missing"
        raise Forbidden(f"a change made with the session cookie needs {CSRF_HEADER}: it {said}")
