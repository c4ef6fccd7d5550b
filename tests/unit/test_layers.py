"""The layering of the package, as the contracts in ``pyproject.toml`` draw it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_layering_contract_is_kept() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_package_says_what_it_owns() -> None:
    package = ROOT / "src" / "jobyard"
    for init in package.rglob("__init__.py"):
        if "migrations" in init.parts:
            continue
        text = init.read_text()
        assert text.startswith('"""'), f"{init} has no docstring"
        assert len(text.split('"""')[1].split()) >= 12, (
            f"{init}: a one-line docstring says too little"
        )
