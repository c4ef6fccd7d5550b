"""Slurm's commands, run with a timeout and retried while the controller does not answer.

Every call is one subprocess with an argv (never a shell) and a bounded wait: a
slow or restarting ``slurmctld`` costs the caller at most ``timeout`` per try and
``tries`` tries, never a hang. What the commands print is parsed by the pure
functions of :mod:`jobyard.runner.slurm.states`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence

log = logging.getLogger("jobyard.runner.slurm")

TIMEOUT = 10.0  # seconds one command may take
TRIES = 3
BACKOFF = 0.5  # seconds before the second try, doubling

# What a command prints when the controller is away: worth another try.
_TRANSIENT = (
    "unable to contact slurm controller",
    "socket timed out",
    "connection refused",
    "slurm_load_jobs error: unable to contact",
    "zero bytes were transmitted",
    "communication connection failure",
    "slurm temporarily unable",
    "resource temporarily unavailable",
)


class SlurmError(Exception):
    """A Slurm command failed; ``transient`` when the controller did not answer."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class SlurmCli:
    """Runs ``sbatch``, ``squeue``, ``scontrol``, ``scancel``, ``sstat`` and ``sacct``."""

    def __init__(
        self, *, timeout: float = TIMEOUT, tries: int = TRIES, backoff: float = BACKOFF
    ) -> None:
        self.timeout, self.tries, self.backoff = timeout, tries, backoff

    @staticmethod
    def available() -> bool:
        """Whether Slurm's commands are installed on this host."""
        return shutil.which("sbatch") is not None

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[bytes, bytes] | None = None,
        tries: int | None = None,
    ) -> str:
        """The command's stdout; retried while the failure is transient, then raised."""
        delay = self.backoff
        for attempt in range(1, (tries or self.tries) + 1):
            try:
                return self._once(argv, env)
            except SlurmError as exc:
                if not exc.transient or attempt == (tries or self.tries):
                    raise
                log.warning("slurm command failed; retrying", extra={"argv": argv, "error": exc})
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _once(self, argv: Sequence[str], env: Mapping[bytes, bytes] | None) -> str:
        try:
            done = subprocess.run(
                list(argv),
                capture_output=True,
                timeout=self.timeout,
                env=env,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SlurmError(
                f"{argv[0]} took more than {self.timeout:g} s", transient=True
            ) from exc
        except OSError as exc:
            raise SlurmError(f"{argv[0]}: {exc.strerror or exc}") from exc
        out = done.stdout.decode(errors="replace")
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip() or out.strip()
            # One line (it becomes a job's error and a line of its log): sbatch says a
            # refusal on two, "error: invalid partition" then "submission failed".
            err = "; ".join(line.strip() for line in err.splitlines() if line.strip())
            transient = any(text in err.lower() for text in _TRANSIENT)
            err = err or f"exit code {done.returncode}"
            said = err.startswith(f"{os.path.basename(argv[0])}:")  # "sbatch: error: …"
            raise SlurmError(err if said else f"{argv[0]}: {err}", transient=transient)
        return out
