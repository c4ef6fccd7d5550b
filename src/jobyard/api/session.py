"""Browser sessions: ``POST /login`` (form or JSON) and ``POST /logout``.

The session cookie is HttpOnly (scripts cannot read it) and SameSite=Lax (other
sites' forms do not send it); changes made with it also need the session's CSRF
token (:mod:`jobyard.api.auth`), which ``POST /login`` and ``GET /api/v1/me`` return.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn
from urllib.parse import urlsplit

from anyio import to_thread
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import from_json

from jobyard.access import Principal
from jobyard.access.audit import escaped
from jobyard.api import inputs
from jobyard.api.auth import COOKIE, address, set_session_cookie
from jobyard.api.resources import get_node
from jobyard.api.schemas import answer
from jobyard.api.users import Me
from jobyard.errors import Forbidden, Invalid, JobyardError, TooManyAttempts
from jobyard.node import Node
from jobyard.ui.login import local, login_form

router = APIRouter(tags=["session"])
NodeDep = Annotated[Node, Depends(get_node)]


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)
    next: str = "/"


@router.post(
    "/login",
    response_model=Me,
    responses={
        303: {"description": "a form login: on to `next`"},
        401: {"description": "a form login: the page again", "content": {"text/html": {}}},
        429: {
            "description": "too many failed logins: a form login gets the page again, "
            "saying when to try again (`Retry-After`)",
            "content": {"text/html": {}},
        },
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": Login.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": Login.model_json_schema()},
            }
        }
    },
)
async def login(request: Request, node: NodeDep) -> Response:
    """Start a browser session: a form posts back to a page, JSON gets the CSRF token."""
    is_form = not inputs.sent_json(request)
    body = await _login_body(request, is_form)  # first: a refusal records the name tried
    if origin := _foreign(request):
        await to_thread.run_sync(_refuse, request, node, "login", body.username, origin)
    try:
        secret, who = await to_thread.run_sync(
            node.gate.login, body.username, body.password, address(request)
        )
    except JobyardError as exc:
        if not is_form:
            raise
        return _form_refused(body, exc)
    response: Response
    if is_form:
        response = RedirectResponse(local(body.next), status_code=303)
    else:
        me = Me(name=who.name, role=who.role, via=who.via, csrf_token=who.csrf)
        response = answer(me)
    set_session_cookie(response, request, secret)
    return response


def _form_refused(body: Login, exc: JobyardError) -> Response:
    """The login page again, saying why: a browser would show a problem's JSON as is."""
    if isinstance(exc, TooManyAttempts):
        message = f"Too many failed logins: try again in {exc.retry_after} s."
        page = login_form(body.next, message, status=429, username=body.username)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    message = "Wrong user name or password."
    return login_form(body.next, message, status=401, username=body.username)


@router.post("/logout", status_code=303, response_class=RedirectResponse)
def logout(request: Request, node: NodeDep) -> RedirectResponse:
    """End the browser session (its cookie stops working everywhere)."""
    secret = request.cookies.get(COOKIE)
    if origin := _foreign(request):
        _refuse(request, node, "logout", _session_of(node, secret), origin)
    if secret:
        node.gate.logout(secret, address(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


async def _login_body(request: Request, is_form: bool) -> Login:
    """The login asked for: 400 when it is not JSON, 422 for a missing field. A name no
    user can have (a NUL) is no 422 here: it fails as an unknown name does, throttled
    and recorded alike (:meth:`~jobyard.access.gate.Gate.password`)."""
    if is_form:
        form = await request.form()
        data: Any = {key: form.get(key) for key in form}
    else:
        try:  # pydantic's parser, as the routes' bodies are read: nesting is bounded
            data = from_json(await request.body())
        except ValueError as exc:
            error = {"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error"}
            raise RequestValidationError([error | {"ctx": {"error": str(exc)}}]) from exc
    try:
        return Login.model_validate(data)
    except ValidationError as exc:
        fields = [
            {"field": ".".join(map(str, e["loc"])), "location": "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        raise Invalid("invalid login", fields) from exc


def _foreign(request: Request) -> str | None:
    """The origin of a login or logout posted from another site's page (login CSRF).

    ``null`` is refused too: it is what a sandboxed frame on any site sends, and
    our own pages always send their origin with a post.
    """
    origin = request.headers.get("origin")
    return origin if origin and urlsplit(origin).netloc != request.url.netloc else None


def _refuse(
    request: Request, node: Node, action: str, who: Principal | str | None, origin: str
) -> NoReturn:
    """Refuse a login or logout from ``origin``: 403, written to the audit log like any 403."""
    name = who.name if isinstance(who, Principal) else who
    target = f"user {name}" if name else "-"
    detail = {"method": request.method, "status": 403, "origin": escaped(origin[:200])}
    node.audit.record(
        who, action, target, outcome="denied", address=address(request), detail=detail
    )
    raise Forbidden(f"a {action} posted by another site ({origin}) is refused")


def _session_of(node: Node, secret: str | None) -> Principal | None:
    """Whose session ``secret`` is, if it is current."""
    try:
        return node.gate.session(secret) if secret else None
    except JobyardError:
        return None
