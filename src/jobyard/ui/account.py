"""The viewer's own account (``/account``): who they are, and the form that changes their
password as ``POST /api/v1/me/password`` does (:func:`change_own_password`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from jobyard.access.accounts import MIN_PASSWORD
from jobyard.access.own_password import change_own_password
from jobyard.api.auth import address, set_session_cookie
from jobyard.api.resources import get_node
from jobyard.api.users import PasswordChange
from jobyard.errors import Forbidden, Invalid, TooManyAttempts, Unauthorized
from jobyard.node import Node
from jobyard.text import text_problem
from jobyard.ui.render import page
from jobyard.ui.viewer import LoginNeeded, Looker

router = APIRouter(include_in_schema=False)
NodeDep = Annotated[Node, Depends(get_node)]
PAGE = "/account"
FIELDS = ("current_password", "new_password", "confirm_password")


@router.get(PAGE, response_class=HTMLResponse)
def account(request: Request, looker: Looker) -> HTMLResponse:
    return _page(request, looker)


# Named as the API's route, so that the audit log records either as ``change_password``.
@router.post(f"{PAGE}/password", name="change_password", response_class=HTMLResponse)
async def change_password(request: Request, looker: Looker, node: NodeDep) -> HTMLResponse:
    """The form again with what was wrong, answered with the API's status (403 for a wrong
    current password, which the audit log records as ``denied``; 422; 429), or saying
    that the password is changed, with the renewed session's cookie."""
    sent = await _sent(request)
    if errors := _form_errors(sent):
        return _page(request, looker, errors=errors, status=422)
    try:
        secret = await to_thread.run_sync(
            change_own_password,
            node.accounts,
            node.gate,
            looker.who,
            sent["current_password"],
            sent["new_password"],
            address(request),
        )
    except Invalid as exc:
        return _page(request, looker, errors=_by_field(exc.errors), status=422)
    except Forbidden as exc:  # not the current password
        return _page(request, looker, errors={"current_password": exc.detail}, status=403)
    except TooManyAttempts as exc:
        response = _page(request, looker, general=exc.detail, status=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except Unauthorized as exc:  # removed, or changed again meanwhile: log in again
        raise LoginNeeded(PAGE) from exc
    response = _page(request, looker, done=True)
    if secret is not None:
        set_session_cookie(response, request, secret)
    return response


async def _sent(request: Request) -> dict[str, str]:
    """The form's three passwords ("" for one missing, or sent as a file)."""
    form = await request.form()
    values = {name: form.get(name) for name in FIELDS}
    return {name: value if isinstance(value, str) else "" for name, value in values.items()}


def _form_errors(sent: Mapping[str, str]) -> dict[str, str]:
    """What the API would refuse before looking at the passwords, and a confirmation that
    does not match: nothing is asked of the server (nor counted as a failure) then.

    A form is not JSON, so the text the API refuses in any JSON value (a NUL: see
    :mod:`jobyard.api.inputs`) is looked for here, in each field, as it is there."""
    errors: dict[str, str] = {}
    try:
        PasswordChange(current_password=sent["current_password"], new_password=sent["new_password"])
    except ValidationError as exc:
        errors = {str(e["loc"][-1]): e["msg"] for e in exc.errors()}
    errors |= {name: why for name in FIELDS if (why := text_problem(sent[name]))}
    if sent["confirm_password"] != sent["new_password"]:
        errors.setdefault("confirm_password", "does not match the new password")
    return errors


def _by_field(problems: list[dict[str, str]]) -> dict[str, str]:
    return {p.get("field") or "new_password": p.get("message", "") for p in problems}


def _page(
    request: Request,
    looker: Looker,
    *,
    errors: dict[str, str] | None = None,
    general: str = "",
    done: bool = False,
    status: int = 200,
) -> HTMLResponse:
    """The account page, or for htmx its form: never with a password in it."""
    return page(
        request,
        looker,
        "account.html",
        part="password_form.html",
        status=status,
        errors=errors or {},
        general=general,
        done=done,
        action=f"{PAGE}/password",
        shortest=MIN_PASSWORD,
    )
