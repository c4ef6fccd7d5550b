"""An unprivileged OS user for the tests of a job type's ``user``, made where it is missing."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess

import pytest

TEST_USER = "jobyard-test"


def unprivileged_user() -> pwd.struct_passwd:
    """The tests' user (a system user without a home), created if missing.

    Skips the test where users cannot be switched (not root) or made (no ``useradd``).
    """
    if os.geteuid() != 0:
        pytest.skip("only root starts jobs as another user")
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        pytest.skip("useradd is not available to make a test user")
    made = subprocess.run(
        [useradd, "--system", "--no-create-home", TEST_USER], capture_output=True, text=True
    )
    try:
        return pwd.getpwnam(TEST_USER)  # made now, or by a test running beside us
    except KeyError:
        raise AssertionError(f"useradd failed: {made.stderr}") from None
