"""/api/v1/tokens: API tokens for scripts; each user manages their own, admins everyone's."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Self

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobyard.access import Role, Token
from jobyard.access.accounts import Accounts
from jobyard.api.auth import Caller
from jobyard.api.params import TokenId
from jobyard.api.schemas import location
from jobyard.api.users import get_accounts
from jobyard.durations import PositiveDuration

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])
AccountsDep = Annotated[Accounts, Depends(get_accounts)]
MAX_LIFETIME = 10 * 365 * 86400.0


class TokenOut(BaseModel):
    id: int
    name: str
    user: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    made_by: int | None = Field(
        default=None,
        description="the token it was made with (null: with a password or a browser "
        "session, whose end and password changes do not end it): it ends no later than "
        "that one, and is revoked with it",
    )

    @classmethod
    def of(cls, token: Token) -> Self:
        return cls(
            id=token.id,
            name=token.name,
            user=token.user,
            role=token.role,
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            made_by=token.made_by,
        )


class CreatedToken(TokenOut):
    token: str = Field(description="the secret: shown this once, send it as `Bearer <token>`")


class TokenList(BaseModel):
    items: list[TokenOut]
    total: int


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    role: Role | None = Field(
        default=None, description="at most the creator's role (default: the creator's)"
    )
    expires_in: Annotated[PositiveDuration, Field(gt=0)] | None = Field(
        default=30 * 86400.0,
        json_schema_extra={"maximum": MAX_LIFETIME},
        description="lifetime, e.g. `90d` or seconds, at most 10 years; null (or `never`): "
        "never expires. A token made with a token ends no later than that one",
    )

    @field_validator("expires_in", mode="before")
    @classmethod
    def _never(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() == "never" else value

    @field_validator("expires_in")
    @classmethod
    def _at_most_ten_years(cls, value: float | None) -> float | None:
        if value is not None and value > MAX_LIFETIME:
            raise ValueError("at most 10 years (3650d); null or `never` for a token that lasts")
        return value


@router.post("", status_code=201, response_model=CreatedToken)
def create_token(
    body: NewToken, who: Caller, accounts: AccountsDep, response: Response
) -> CreatedToken:
    """A token for the caller, with a role no higher than theirs; the secret is shown once."""
    lifetime = timedelta(seconds=body.expires_in) if body.expires_in is not None else None
    made = accounts.add_token(who, body.name, body.role, lifetime)
    response.headers["Location"] = location(router.prefix, made.token.id)
    return CreatedToken(**TokenOut.of(made.token).model_dump(), token=made.secret)


@router.get("", response_model=TokenList)
def list_tokens(
    who: Caller,
    accounts: AccountsDep,
    all_users: Annotated[bool, Query(alias="all", description="every user's (admins)")] = False,
) -> TokenList:
    """The caller's tokens, revoked and expired ones included; with ``all``, everyone's."""
    items = [TokenOut.of(token) for token in accounts.tokens(who, everyone=all_users)]
    return TokenList(items=items, total=len(items))


@router.delete("/{token_id}", response_model=TokenOut)
def revoke_token(token_id: TokenId, who: Caller, accounts: AccountsDep) -> TokenOut:
    """Revoke one of the caller's tokens (an admin: anyone's). It stops working at once."""
    return TokenOut.of(accounts.revoke_token(who, token_id))
