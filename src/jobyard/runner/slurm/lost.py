"""Cancel the Slurm job of an attempt that jobyard gave up on (lost, no retry left).

A job whose worker was lost ends ``failed`` (``worker_lost``) when it has no attempt
left, and no later attempt would cancel its Slurm job: it would run on unwatched,
holding the cluster's resources. Its recorded id is cancelled here, once Slurm shows
that it is still this attempt's job (its comment), among the user's own jobs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

from jobyard.runner.slurm.cli import SlurmCli, SlurmError

log = logging.getLogger("jobyard.runner.slurm")


def cancel_recorded(details: Mapping[str, Any], cli: SlurmCli | None = None) -> bool:
    """``scancel`` the Slurm job ``details`` records if it is still ours; True if it was."""
    ref = str(details.get("slurm_job_id") or "")
    mark = details.get("identity")
    if details.get("executor") != "slurm" or not ref.isdigit():
        return False
    cli = cli or SlurmCli()
    if not cli.available():
        log.warning("cannot cancel a lost job's Slurm job here", extra={"slurm_job": ref})
        return False
    with contextlib.suppress(SlurmError):
        shown = cli.run(["squeue", "-h", "--me", "-j", ref, "-o", "%k"]).strip()
        if shown and (mark is None or shown == mark):
            cli.run(["scancel", "--me", ref])
            log.warning("cancelled the Slurm job of a lost job", extra={"slurm_job": ref})
            return True
    return False


def cancel_in_background(details: Mapping[str, Any]) -> None:
    """:func:`cancel_recorded` on a thread of its own: Slurm may take seconds to answer."""
    threading.Thread(
        target=cancel_recorded, args=(dict(details),), name="slurm-cancel-lost", daemon=True
    ).start()
