"""The Slurm working directory: output files and batch scripts, private to the worker's user.

The batch script holds the job's environment and the output files its log, so the
directory is the worker user's alone (0700). A fixed path under ``/tmp`` would let
another user create it first, or plant a symlink there; and under systemd's
``PrivateTmp=yes`` the worker's ``/tmp`` is not the one the Slurm nodes see. The
default is under the worker user's state directory instead (``$XDG_STATE_HOME``,
else ``~/.local/state``), which on most clusters is a shared home.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class WorkdirError(OSError):
    """The directory cannot be used safely; the message says why and where."""


def default_workdir() -> str:
    """``$XDG_STATE_HOME/jobyard/slurm``, else ``~/.local/state/jobyard/slurm``."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(state) / "jobyard" / "slurm")


def prepare(path: str) -> None:
    """Create ``path`` (0700) if missing; refuse one that is not ours or that others
    may write to, or a symlink (whoever made it chose where our files go)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise WorkdirError(f"workdir {path} is not a directory (a symlink?)")
    if info.st_uid != os.geteuid():
        raise WorkdirError(f"workdir {path} belongs to uid {info.st_uid}, not to the worker's user")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise WorkdirError(f"workdir {path} is writable by others: make it 0700 (or 0750)")
