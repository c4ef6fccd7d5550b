"""The browser fixtures of the UI tests (:mod:`tests.e2e.browser`)."""

from __future__ import annotations

from tests.e2e.browser import browser

__all__ = ["browser"]
