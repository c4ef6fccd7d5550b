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


class Forbidden(JobyardError):
    """The request is understood, and refused whoever asks (e.g. the server's configuration)."""

    status = 403
    title = "Forbidden"


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
