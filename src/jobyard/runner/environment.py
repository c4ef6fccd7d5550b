"""What a job's processes see of the environment: an allow-list, never the server's secrets.

A worker's environment holds what the server needs (its database URL, a mail
password, webhook secrets, cloud credentials); a job gets none of it. Every job
process, command or Python, and whatever it starts, begins from a clean
environment made of, later parts winning:

1. the variables of :data:`ALLOWED` that the worker has (the locale, ``PATH``,
   the time zone, the terminal: what programs need to behave), and those the
   configuration's ``pass_env`` names;
2. ``HOME``, ``USER`` and ``LOGNAME`` of the job type's ``user``, if it has one;
3. the type's ``env`` and the job's arguments (``JOBYARD_ARG_*``);
4. the job's identity, :func:`identity`: ``JOBYARD_JOB_ID``, and
   ``JOBYARD_JOB_TOKEN``, by which :func:`~jobyard.runner.procs.kill_job_processes`
   finds processes of the job that left its process group, and
   ``JOBYARD_WORKER_PID``, by which a worker finds what a dead one left running.

A name ending in ``*`` stands for every variable it starts (``LC_*``).

A clean environment is not enough on its own: a job running as the worker's
user could read the worker's in ``/proc/<pid>/environ`` (its parent's, or its
parent's parent's). :func:`seal` closes that door for the whole process.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping

log = logging.getLogger(__name__)
_PR_SET_DUMPABLE = 4


def seal() -> None:
    """Keep this process's ``/proc`` files (environment, memory, fds) from its jobs.

    Marks the process not dumpable (``prctl(PR_SET_DUMPABLE, 0)``): its ``/proc``
    entries then belong to root, so a job running as the same user cannot read
    them. A job's own process is dumpable again (``exec`` resets the flag), so
    it keeps its own ``/proc``. The cost: no core dump of a worker, and only
    root may attach a debugger or profiler to it. Root reads everything anyway:
    jobs that must not see the server's secrets run as another ``user``.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("cannot seal the worker's /proc files: errno %d", ctypes.get_errno())


ALLOWED = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
)
"""Passed from the worker to every job: nothing secret, and what programs expect to find."""

NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\*?")
"""A ``pass_env`` entry: a variable name, or the start of names followed by ``*``."""


class JobEnvironment:
    """The clean environments of one runner's jobs.

    The allowed part is taken from ``environ`` (the process's environment) once,
    when the runner is made, and kept encoded as ``exec`` takes it: a job's
    environment is then one merge of two small dicts.
    """

    def __init__(
        self, pass_env: Iterable[str] = (), environ: Mapping[bytes, bytes] | None = None
    ) -> None:
        names = (*ALLOWED, *pass_env)
        exact = {os.fsencode(n) for n in names if not n.endswith("*")}
        prefixes = tuple(os.fsencode(n[:-1]) for n in names if n.endswith("*"))
        source = environ_bytes() if environ is None else environ
        self.base = {k: v for k, v in source.items() if k in exact or k.startswith(prefixes)}

    def with_variables(self, variables: Mapping[str, str]) -> dict[bytes, bytes]:
        """The allowed part with ``variables`` over it."""
        return self.base | encode(variables)

    def for_job(
        self,
        job_id: int,
        token: str,
        own: Mapping[str, str],
        person: Mapping[str, str],
        *,
        local: bool = True,
    ) -> dict[bytes, bytes]:
        """A job's whole environment: the allowed part, ``person`` (the user's ``HOME``,
        ``USER``, ``LOGNAME``; may be empty), ``own`` (the type's and the arguments'),
        and its identity (``local``: a process of this worker's, see :func:`identity`)."""
        return self.base | encode({**person, **own, **identity(job_id, token, local=local)})


def identity(job_id: int, token: str, *, local: bool = True) -> dict[str, str]:
    """The variables that say which job (and which attempt of it) a process belongs to;
    for a ``local`` process (not a cluster's job, which runs on without its worker and is
    adopted by the next), also which worker process started it, so that once that worker
    died another one of the host finds what it left running (``Orphans.sweep``)."""
    found = {"JOBYARD_JOB_ID": str(job_id), "JOBYARD_JOB_TOKEN": token}
    return found | {"JOBYARD_WORKER_PID": str(os.getpid())} if local else found


def encode(variables: Mapping[str, str]) -> dict[bytes, bytes]:
    return {os.fsencode(k): os.fsencode(v) for k, v in variables.items()}


def environ_bytes() -> dict[bytes, bytes]:
    """A copy of our environment, encoded: CPython keeps it so, and copies it at C speed
    (copying ``os.environ`` decodes every variable)."""
    data: dict[bytes, bytes] = os.environ._data  # type: ignore[attr-defined]
    return data.copy()
