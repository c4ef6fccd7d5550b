"""The executors of one worker, and which one runs a job: the job's ``spec.executor``.

A job whose spec names no executor runs on the worker's host (:mod:`.local`); one
that names ``slurm`` runs on the Slurm cluster (:mod:`.slurm`). Both implement
:class:`~jobyard.runner.contract.Executor`; this router does too, so the worker
sees one executor. The Slurm package is imported, and its executor made, only for
the first Slurm job: a worker with no Slurm job type never loads it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jobyard.models import Job, JobSpec
from jobyard.runner.contract import Execution, GuardedSink, Sink
from jobyard.runner.local import Runner
from jobyard.runner.pool import Pool

if TYPE_CHECKING:
    from jobyard.runner.slurm import SlurmExecutor


class Executors:
    """Routes each job to the local runner or to the Slurm executor. One per worker.

    ``install`` names the installation (the same for every worker of one database):
    a cluster's jobs are marked with it, so no worker takes another's for its own;
    ``formerly`` the names earlier releases gave it (jobs they marked are its too).
    """

    def __init__(
        self, local: Runner, *, install: str = "local", formerly: Sequence[str] = ()
    ) -> None:
        self.local = local
        self._install = install
        self._formerly = tuple(formerly)
        self._slurm: SlurmExecutor | None = None
        self._lock = threading.Lock()

    @property
    def pool(self) -> Pool:
        """The local runner's pre-started Python children (a worker waits for them)."""
        return self.local.pool

    def start(
        self,
        job_id: int,
        token: str,
        spec: JobSpec,
        sink: Sink,
        *,
        give_up: threading.Event | None = None,
    ) -> Execution:
        """Start a job where its spec says; never raises (its Result says why not)."""
        if spec.executor is None:
            return self.local.start(job_id, token, spec, sink, give_up=give_up)
        return self.slurm.start(job_id, token, spec, GuardedSink(sink, job_id))

    def adopt(self, job: Job, token: str, sink: Sink) -> Execution:
        """Follow a job a dead worker left running (only a cluster's job outlives it)."""
        if job.spec.executor is None:
            return self.local.adopt(job, token, sink)
        return self.slurm.adopt(job, token, GuardedSink(sink, job.id))

    def close(self, timeout: float = 5.0) -> None:
        """Close the local runner (it kills what still runs), then the Slurm executor."""
        deadline = time.monotonic() + timeout
        self.local.close(timeout)
        if self._slurm is not None:
            self._slurm.close(max(deadline - time.monotonic(), 0.0))

    @property
    def slurm(self) -> SlurmExecutor:
        """The executor of ``executor: slurm`` jobs, made (and imported) for the first."""
        with self._lock:
            if self._slurm is None:
                from jobyard.runner.slurm import SlurmExecutor

                self._slurm = SlurmExecutor(
                    self.local.environment, install=self._install, formerly=self._formerly
                )
            return self._slurm
