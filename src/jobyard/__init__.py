"""jobyard: a job manager for batch work, from one laptop to a cluster."""

from __future__ import annotations

__version__ = "0.1.0"
