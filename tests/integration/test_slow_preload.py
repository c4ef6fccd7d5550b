"""A job waiting for a Python child that is still importing its preload can be stopped.

A job claimed while the pool's children import a slow ``preload`` (after a child was
replaced, say) waits for one to be ready. A kill of it, or its worker's hand-back,
waited for the import too (up to its limit, minutes); now it ends the wait at once.
The preload here waits for a file, so the child is not ready for as long as the test
needs, whatever the machine's speed.
"""

from __future__ import annotations

from pathlib import Path

from tests.harness import Launcher, wait_for


def test_a_job_waiting_for_a_child_still_importing_is_killed_at_once(
    sqlite_url: str, launch: Launcher, tmp_path: Path
) -> None:
    gate = tmp_path / "imports-may-finish"
    gate.touch()
    (tmp_path / "gated_preload.py").write_text(
        f"import os, time\nwhile not os.path.exists({str(gate)!r}):\n    time.sleep(0.02)\n"
    )
    (tmp_path / "naps.py").write_text(
        "import time\n\ndef nap():\n    time.sleep(60)\n\ndef quick():\n    pass\n"
    )
    config = tmp_path / "jobyard.yaml"
    config.write_text(
        "preload: [gated_preload]\n"
        "job_types:\n  nap: {python: 'naps:nap'}\n  quick: {python: 'naps:quick'}\n"
    )
    server = launch(sqlite_url, config=config, args=["--concurrency", "1"])
    first = server.submit("nap")
    server.wait_state(first["id"], "running")
    gate.unlink()  # from now on a new child imports until the gate is back
    server.act(first["id"], "kill", expect=202)
    server.wait_state(first["id"], "killed")  # its child goes with it; the next one waits
    waiting = server.submit("nap")
    server.wait_state(waiting["id"], "running")  # claimed: its start waits for a child
    server.act(waiting["id"], "kill", expect=202)
    killed = server.wait_state(waiting["id"], "killed", timeout=30)
    assert not gate.exists()  # no child became ready: the kill did not wait for one
    assert killed["reason"] == "killed"
    gate.touch()
    after = server.submit("quick")
    server.wait_state(after["id"], "succeeded")  # the children finished their import
    wait_for(lambda: server.job(waiting["id"])["control"] is None, what="the kill's intent")
