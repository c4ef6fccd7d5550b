"""/api/v1/users (admins): add, list, change and remove users; /api/v1/me: who am I, and
/api/v1/me/password: a user's change of their own password."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from jobyard.access import Role, User
from jobyard.access.accounts import Accounts
from jobyard.access.own_password import change_own_password
from jobyard.api.auth import Caller, address, set_session_cookie
from jobyard.api.resources import get_node
from jobyard.api.schemas import location
from jobyard.node import Node

router = APIRouter(prefix="/api/v1/users", tags=["users"])
me_router = APIRouter(tags=["users"])


async def get_accounts(node: Annotated[Node, Depends(get_node)]) -> Accounts:
    return node.accounts


AccountsDep = Annotated[Accounts, Depends(get_accounts)]
NodeDep = Annotated[Node, Depends(get_node)]


class UserOut(BaseModel):
    name: str
    role: Role
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> Self:
        return cls(
            name=user.name, role=user.role, created_at=user.created_at, updated_at=user.updated_at
        )


class UserList(BaseModel):
    items: list[UserOut]
    total: int


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    role: Role = Role.VIEWER
    password: str = Field(min_length=8, max_length=1000)


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1000)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1000, description="to prove it is you")
    new_password: str = Field(max_length=1000, description="at least 8 characters")


class Me(BaseModel):
    name: str
    role: Role = Field(description="what this request may do (a token's role may be lower)")
    via: str = Field(description="password, token or session")
    token_id: int | None = Field(
        default=None,
        description="with a token: its id (to revoke it, `DELETE /api/v1/tokens/{id}`)",
    )
    csrf_token: str | None = Field(
        default=None, description="with a session: send it as X-CSRF-Token on changes"
    )


@me_router.get("/api/v1/me", response_model=Me)
def whoami(who: Caller) -> Me:
    """Who the credentials of this request belong to."""
    return Me(name=who.name, role=who.role, via=who.via, token_id=who.token_id, csrf_token=who.csrf)


@me_router.post(
    "/api/v1/me/password",
    status_code=204,
    responses={
        403: {"description": "`current_password` is not the caller's password"},
        429: {"description": "too many wrong passwords (logins' and these) from this address"},
    },
)
def change_password(body: PasswordChange, who: Caller, node: NodeDep, request: Request) -> Response:
    """Change your own password: give the current one too. Your browser sessions end,
    and so do requests and streams made with the old password; the session the change
    is made from goes on under a new cookie (`Set-Cookie`), with the same CSRF token.
    API tokens go on (`GET /api/v1/tokens` lists them, `DELETE /api/v1/tokens/{id}`
    revokes one)."""
    current, new = body.current_password, body.new_password
    secret = change_own_password(node.accounts, node.gate, who, current, new, address(request))
    response = Response(status_code=204)
    if secret is not None:
        set_session_cookie(response, request, secret)
    return response


@router.get("", response_model=UserList)
def list_users(accounts: AccountsDep) -> UserList:
    items = [UserOut.of(user) for user in accounts.users()]
    return UserList(items=items, total=len(items))


@router.post("", status_code=201, response_model=UserOut)
def add_user(body: NewUser, accounts: AccountsDep, response: Response) -> UserOut:
    user = accounts.add_user(body.name, body.role, body.password)
    response.headers["Location"] = location(router.prefix, user.name)
    return UserOut.of(user)


@router.get("/{name}", response_model=UserOut)
def get_user(name: str, accounts: AccountsDep) -> UserOut:
    return UserOut.of(accounts.user(name))


@router.patch("/{name}", response_model=UserOut)
def change_user(
    name: str, body: UserChange, who: Caller, node: NodeDep, request: Request, response: Response
) -> UserOut:
    """Change a user's role and/or password (the last admin cannot be demoted). A new
    password ends the user's browser sessions; an admin's own session, when they set
    their own password from it, goes on under a new cookie (`Set-Cookie`)."""
    accounts = node.accounts
    user = accounts.user(name)
    if body.role is not None:
        user = accounts.set_role(name, body.role)
    if body.password is not None:
        user = accounts.set_password(name, body.password)
        if name == who.name and who.via == "session":
            secret = node.gate.renewed_session(who, body.password)
            set_session_cookie(response, request, secret)
    return UserOut.of(user)


@router.delete("/{name}", status_code=204)
def remove_user(name: str, accounts: AccountsDep) -> Response:
    """Remove a user with their tokens and sessions (not the last admin)."""
    accounts.remove_user(name)
    return Response(status_code=204)
