"""The HTTP API (FastAPI): a declared list of routers over one node's resources."""

from __future__ import annotations

from jobyard.api.app import create_app

__all__ = ["create_app"]
