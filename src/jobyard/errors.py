"""Domain errors: raised by the manager, turned into problem details at the edges."""

from __future__ import annotations

from typing import Any


class JobyardError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(JobyardError):
    status = 404
    title = "Not found"


class Unauthorized(JobyardError):
    """No credentials, or wrong ones: the client must authenticate (401)."""

    status = 401
    title = "Unauthorized"


class Forbidden(JobyardError):
    """Authenticated, but the role (or the server's configuration) does not allow it."""

    status = 403
    title = "Forbidden"


class TooManyAttempts(JobyardError):
    """Too many failed logins: try again after ``retry_after`` seconds (429)."""

    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = max(1, round(retry_after))


class Conflict(JobyardError):
    """The resource's current state forbids the request (``extra`` says which state)."""

    status = 409
    title = "Conflict"


class Invalid(JobyardError):
    """Input that fails validation; ``errors`` names every bad field."""

    status = 422
    title = "Invalid input"

    def __init__(self, detail: str, errors: list[dict[str, str]]) -> None:
        super().__init__(detail, errors=errors)
        self.errors = errors
