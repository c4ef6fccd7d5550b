"""jobyard: a job manager for batch work, from one laptop to a cluster.

``jobyard.job`` declares a Python function a job type in code (see
:mod:`jobyard.jobtypes.decorator`); the rest lives in the subpackages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobyard.jobtypes.decorator import job

__all__ = ["__version__", "job"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``jobyard.job``, imported at its first use: ``import jobyard.cli`` stays as cheap."""
    if name == "job":
        from jobyard.jobtypes.decorator import job

        return job
    raise AttributeError(f"module 'jobyard' has no attribute {name!r}")
