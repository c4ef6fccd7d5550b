"""The OS user a job runs as (a job type's ``user``), looked up when the job starts.

A worker running as root starts such a job's processes as that user, with its
primary group and its supplementary groups, and ``HOME``, ``USER`` and
``LOGNAME`` set to the user's. A worker running as that user already runs the
job as it is. Any other worker cannot switch users: the job fails to start, and
says why.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from typing import Any


class AccountError(Exception):
    """A job cannot run as the user its type names (on this host, by this worker)."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    switch: bool  # whether our processes must change user to be this one

    def variables(self) -> dict[str, str]:
        return {"HOME": self.home, "USER": self.name, "LOGNAME": self.name}

    def popen_args(self) -> dict[str, Any]:
        """What ``subprocess.Popen`` needs to start a process as this user."""
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}


def account(name: str) -> Account:
    """The user ``name`` as a job runs it here; :class:`AccountError` if it cannot."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise AccountError(f"user {name!r} does not exist on this host") from None
    me = os.geteuid()
    if me != 0 and entry.pw_uid != me:
        raise AccountError(
            f"cannot run as user {name!r}: this worker runs as {_name_of(me)!r}, "
            "and only a worker running as root can start jobs as another user"
        )
    groups = tuple(os.getgrouplist(name, entry.pw_gid))
    switch = entry.pw_uid != me
    return Account(name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir, switch)


def _name_of(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
