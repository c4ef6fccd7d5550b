"""Errors of the Python client: problem details of the API, and an unreachable server."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import httpx


class ApiError(Exception):
    """The server answered with an error (an RFC 9457 problem).

    ``errors`` lists field problems as ``{"field", "message", …}``; ``state`` is
    the job's current state on a 409 about a forbidden transition.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        state: str | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.state = state
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The detail with the field errors, on one line."""
        fields = "; ".join(_field_error(error) for error in self.errors)
        if not fields or fields in self.detail:  # a detail may say them already
            return self.detail
        return f"{self.detail} ({fields})"

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """The error of ``response`` (a problem body or anything else), of the right class."""
        body = _json(response)
        return cls.from_problem(response.status_code, body, response.text.strip()[:300])

    @classmethod
    def from_problem(cls, status: int, body: Mapping[str, Any], text: str = "") -> ApiError:
        """The error a problem's fields describe (a response's body, a ``denied`` event's)."""
        phrase = _phrase(status)
        kind = _CLASSES.get(status, cls)
        errors = body.get("errors")
        state = body.get("state")
        return kind(
            status=status,
            title=str(body.get("title") or phrase),
            detail=str(body.get("detail") or text or phrase),
            errors=errors if isinstance(errors, list) else None,
            state=state if isinstance(state, str) else None,
        )


class NotFound(ApiError):
    """404: no such job or job type."""


class Conflict(ApiError):
    """409: the current state forbids the request (``state`` says which)."""


class Invalid(ApiError):
    """400 or 422: bad input; ``errors`` names every bad field."""


class Unauthorized(ApiError):
    """401: no credentials, or wrong ones (an unknown, expired or revoked token)."""


class Forbidden(ApiError):
    """403: the credentials are good but their role does not allow the request."""


class ServerUnreachable(ConnectionError):
    """The server could not be reached (refused, timed out, or the connection broke)."""


_CLASSES: dict[int, type[ApiError]] = {
    400: Invalid,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
}


def _field_error(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    field = error.get("field") or error.get("location") or ""
    message = error.get("message", "")
    return f"{field}: {message}" if field else str(message)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
