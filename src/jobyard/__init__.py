"""jobyard: a job manager for batch work, from one laptop to a cluster.

``jobyard.job`` declares a Python function a job type in code (see
:mod:`jobyard.jobtypes.decorator`); the rest lives in the subpackages.
"""

from __future__ import annotations

from jobyard.jobtypes.decorator import job

__all__ = ["__version__", "job"]

__version__ = "0.1.0"
