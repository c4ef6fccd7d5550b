"""The wheel users install: it ships ``py.typed`` (so type checkers read the client's types)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_py_typed_and_the_clients(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps"]
    command += ["--no-build-isolation", "--quiet", "--wheel-dir", str(tmp_path)]
    subprocess.run(command, check=True, timeout=300)
    (wheel,) = tmp_path.glob("jobyard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "jobyard/py.typed" in names
    assert {"jobyard/client/asynchronous.py", "jobyard/client/events.py"} <= names
    assert "jobyard/jobtypes/decorator.py" in names
