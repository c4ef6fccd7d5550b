"""`jobyard serve` logs a line per HTTP request only when asked (`--access-log`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import Server

LINE = '"GET /api/v1/jobs?per_page=1 HTTP/1.1" 200'


@pytest.mark.parametrize(
    ("args", "env", "logged"),
    [
        ((), {"JOBYARD_ACCESS_LOG": None}, False),
        (("--access-log",), {}, True),
        ((), {"JOBYARD_ACCESS_LOG": "true"}, True),
    ],
    ids=["default", "flag", "variable"],
)
def test_requests_are_logged_only_when_asked(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str | None], logged: bool
) -> None:
    server = Server(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path, args=args, env=env).start()
    try:
        assert server.client.get("/api/v1/jobs?per_page=1").status_code == 200
    finally:
        server.stop()  # its log is whole once it exited
    log = server.log()
    assert "Application shutdown complete" in log, log  # the whole log, to its end
    assert (LINE in log) is logged, log
