"""The Python examples of docs/client.md run, as written, against a real server.

The server serves ``examples/jobyard.yaml`` (what ``make run`` serves); only its
address replaces the ``http://127.0.0.1:8000`` of the examples.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import ADMIN, Server, shared_server

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "client.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.DOTALL)

server = shared_server(backends=["sqlite"], config=ROOT / "examples" / "jobyard.yaml")


def test_the_page_has_sync_and_async_examples() -> None:
    assert len(EXAMPLES) == 2
    assert "Client(" in EXAMPLES[0]
    assert "AsyncClient(" in EXAMPLES[1]


@pytest.mark.parametrize("source", EXAMPLES, ids=["sync", "async"])
def test_an_example_runs(server: Server, source: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(source.replace("http://127.0.0.1:8000", server.url))
    env = os.environ | {"JOBYARD_USER": ADMIN[0], "JOBYARD_PASSWORD": ADMIN[1]}
    env.pop("JOBYARD_TOKEN", None)
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout
