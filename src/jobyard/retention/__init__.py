"""Retention: how long finished work is kept, and the pruner that removes what is older.

:mod:`.policy` is the ``retention:`` section of ``jobyard.yaml`` as pure data
(an age per kind of row, or keep for ever). :mod:`.pruner` applies it through
the store's retention part in small batches: on the scheduler leader in the
background, and once from ``jobyard prune``. Only rows of finished jobs (and
sent or failed notifications, and audit entries) are ever removed.
"""

from __future__ import annotations

from jobyard.retention.policy import KINDS, RetentionPolicy, parse_retention

__all__ = ["KINDS", "RetentionPolicy", "parse_retention"]
