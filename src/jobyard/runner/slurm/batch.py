"""The batch script and the ``sbatch`` command line of one job.

The script only ``exec``s the job's argv, each element quoted with :func:`shlex.quote`:
no argument is ever read by a shell as anything but one word, and the job's own
process replaces the script's shell (its exit status is the job's, its signals
reach the job). Every ``sbatch`` option comes from the job type's validated
``executor.slurm`` mapping (see :mod:`jobyard.jobtypes.executor`).
"""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobyard.runner.slurm.workdir import default_workdir

_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class SlurmOptions:
    """A job's ``executor.slurm`` settings, read from its spec."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: float | None = None  # seconds
    cpus: int | None = None
    mem: int | None = None  # bytes
    gres: str | None = None
    options: tuple[str, ...] = ()
    workdir: str = ""  # from_spec fills in the default

    @classmethod
    def from_spec(cls, executor: Mapping[str, Any]) -> SlurmOptions:
        data = dict(executor.get("slurm") or {})
        data["options"] = tuple(data.get("options") or ())
        data["workdir"] = data.get("workdir") or default_workdir()
        return cls(**data)


def job_name(job_id: int) -> str:
    """The Slurm job name of every attempt of a jobyard job, for people: not unique
    across installations or users (:func:`identity` is)."""
    return f"jobyard-{job_id}"


def identity(install: str, job_id: int, attempt: int) -> str:
    """The Slurm job's ``--comment``: which installation, job and attempt it belongs to.

    Checked before a Slurm job found by name is followed or cancelled, and by every
    poll: a job of another installation, another user or a recycled Slurm id is
    never taken for ours.
    """
    return f"jobyard:{install}:{job_id}:{attempt}"


def attempt_of(token: str) -> int:
    """The attempt number of a run token (``worker:job:attempt``)."""
    return int(token.rpartition(":")[2])


def script(argv: Sequence[str], environment: Mapping[bytes, bytes]) -> bytes:
    """A batch script that sets the job's ``environment`` and replaces itself with ``argv``.

    The job is submitted with ``--export=NONE``: its environment is this one, exported
    here (each value quoted), never the submitting process's, and ``sbatch`` itself
    runs with the worker's own (a type's ``env`` cannot reach ``SBATCH_*`` or
    ``SLURM_CONF``). A name the shell cannot export is left out.
    """
    lines = ["#!/bin/sh", "# written by jobyard: the job's environment, then its command"]
    for key, value in sorted(environment.items()):
        name = os.fsdecode(key)
        if _SHELL_NAME.fullmatch(name):
            lines.append(f"export {name}={shlex.quote(os.fsdecode(value))}")
    lines.append("exec " + shlex.join(argv))
    return ("\n".join(lines) + "\n").encode(errors="surrogateescape")


def output_paths(workdir: str, job_id: int) -> tuple[str, str]:
    """Where Slurm writes the job's stdout and stderr (``%j``: Slurm's own job id)."""
    base = Path(workdir) / f"jobyard-{job_id}-%j"
    return f"{base}.out", f"{base}.err"


def sbatch_argv(
    options: SlurmOptions,
    job_id: int,
    comment: str,
    script_path: str,
    cwd: str | None,
    timeout: float | None,
) -> list[str]:
    """``sbatch --parsable`` with the job's options, reading ``script_path``.

    A job Slurm loses (its node fails) is not requeued by Slurm: it ends, and
    jobyard retries it per its type. Without its own ``time``, a job's timeout
    (plus a minute, so jobyard's own kill and its grace come first) becomes
    Slurm's limit too.
    """
    out, err = output_paths(options.workdir, job_id)
    # --no-requeue: retries are jobyard's (a Slurm requeue would run it again unseen)
    argv = ["sbatch", "--parsable", "--no-requeue", f"--job-name={job_name(job_id)}"]
    argv += [f"--comment={comment}", "--export=NONE"]  # the script sets the environment
    argv.append("--hold")  # released once its id is stored: no Slurm job runs unrecorded
    argv += [f"--output={out}", f"--error={err}", f"--chdir={cwd or options.workdir}"]
    for flag, value in (
        ("--partition", options.partition),
        ("--account", options.account),
        ("--qos", options.qos),
        ("--cpus-per-task", options.cpus),
        ("--gres", options.gres),
    ):
        if value is not None:
            argv.append(f"{flag}={value}")
    if options.mem is not None:
        # 0 is sbatch's "all of the node's memory"; any other size at least a MiB.
        mem = 0 if options.mem == 0 else max(math.ceil(options.mem / 2**20), 1)
        argv.append(f"--mem={mem}M")
    limit = options.time if options.time is not None else (timeout and timeout + 60)
    if limit:
        argv.append(f"--time={slurm_time(limit)}")
    return [*argv, *options.options, script_path]


def slurm_time(seconds: float) -> str:
    """Seconds as Slurm's ``D-HH:MM:SS`` (rounded up to whole seconds)."""
    total = math.ceil(seconds)
    days, rest = divmod(total, 86400)
    return f"{days}-{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
