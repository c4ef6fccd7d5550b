"""The Slurm working directory: private to the worker's user, never someone else's."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from jobyard.runner.slurm.batch import SlurmOptions
from jobyard.runner.slurm.workdir import WorkdirError, prepare


def test_the_default_is_under_the_users_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/home/u/.state")
    assert SlurmOptions.from_spec({"slurm": {}}).workdir == "/home/u/.state/jobyard/slurm"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", "/home/u")
    assert SlurmOptions.from_spec({}).workdir == "/home/u/.local/state/jobyard/slurm"


def test_a_missing_directory_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "a" / "slurm"
    prepare(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_a_symlink_planted_there_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "slurm").symlink_to(target)
    with pytest.raises(WorkdirError, match="not a directory"):
        prepare(str(tmp_path / "slurm"))


def test_a_directory_others_may_write_to_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "open"
    path.mkdir()
    os.chmod(path, 0o777)
    with pytest.raises(WorkdirError, match="writable by others"):
        prepare(str(path))


def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a directory to another user")
    path = tmp_path / "theirs"
    path.mkdir(mode=0o700)
    os.chown(path, 65534, 65534)
    with pytest.raises(WorkdirError, match="belongs to uid 65534"):
        prepare(str(path))
