"""Any bytes a job writes are stored as the same lines on SQLite, PostgreSQL and MariaDB.

PostgreSQL refuses NUL in text; the other two keep it. Output is made storable
where it is decoded (invalid UTF-8 and NUL become U+FFFD), so every backend
stores, and serves back, identical lines.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Server

SEED, SIZE = 7, 3_000_000  # a few MB of random bytes, the same on every run
HEAD = b"a NUL \x00 here\ninvalid \xff\xfe UTF-8\r\nsplit \xe2\x82"

SCRIPT = f"""
import random, sys
out = sys.stdout.buffer
out.write({HEAD!r})
out.write(random.Random({SEED}).randbytes({SIZE}))
out.write(b"\\nthe end\\n")
"""

CONFIG = json.dumps(
    {
        "job_types": {
            "binary": {"command": ["python3", "-c", SCRIPT]},
            "raise-nul": {"python": "nul_job:explode"},
            "reports-nul": {"python": "nul_job:reports"},
            "details-nul": {"python": "nul_job:Details"},
        }
    }
)
NUL_JOB = r"""
def explode() -> None:
    raise ValueError("bad \x00 byte")


def reports(ctx) -> None:
    print("before")
    ctx.progress(0.5, "half\x00way \ud800")
    ctx.metric("rows\x00", 1)
    print("after")


class Details:
    def start(self, ctx) -> None:
        print("ran")

    def details(self) -> dict:
        return {"key\x00": ["value\x00", "\udfff"]}
"""


def expected_lines() -> list[str]:
    """The lines as documented: split on LF, a CR before it dropped, U+FFFD for the rest."""
    data = HEAD + random.Random(SEED).randbytes(SIZE) + b"\nthe end\n"
    pieces = data.split(b"\n")[:-1]  # the output ends with a newline
    assert all(len(piece) < 65536 for piece in pieces)  # no line long enough to be cut
    return [
        piece.removesuffix(b"\r").decode("utf-8", errors="replace").replace("\0", "\ufffd")
        for piece in pieces
    ]


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    config = tmp_path / "jobyard.yaml"
    config.write_text(CONFIG)
    (tmp_path / "nul_job.py").write_text(NUL_JOB)
    server = Server(database_url=database_url, workdir=tmp_path, config=config).start()
    yield server
    server.stop()


def all_logs(server: Server, job_id: int) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    while page := server.logs(job_id, after=len(lines), limit=1000):
        lines += page
    return lines


def test_binary_output_is_stored_whole_and_alike_on_every_backend(server: Server) -> None:
    job = server.submit("binary")
    done = server.wait_state(job["id"], "succeeded", "failed", timeout=120)
    assert done["state"] == "succeeded", server.log()
    lines = all_logs(server, job["id"])
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    stdout = [line["line"] for line in lines if line["stream"] == "stdout"]
    assert stdout[:2] == ["a NUL \ufffd here", "invalid \ufffd\ufffd UTF-8"]
    assert stdout == expected_lines()
    assert done["resources"]["output_bytes"] == len(HEAD) + SIZE + len(b"\nthe end\n")
    assert done["resources"]["log_lines"] == len(lines)


def test_an_error_text_with_nul_still_ends_the_job(server: Server, tmp_path: Path) -> None:
    job = server.submit("raise-nul")
    done = server.wait_state(job["id"], "failed", "succeeded", timeout=60)
    assert done["error"] == "ValueError: bad \ufffd byte"
    stderr = [line["line"] for line in all_logs(server, job["id"]) if line["stream"] == "stderr"]
    assert stderr[-1] == "ValueError: bad \ufffd byte"


def test_text_a_python_job_reports_is_stored_on_every_backend(server: Server) -> None:
    # A NUL in a progress message or a metric's name failed the write of the job's
    # output on PostgreSQL: the job failed, and its log lines were not stored.
    job = server.submit("reports-nul")
    done = server.wait_state(job["id"], "succeeded", "failed", timeout=60)
    assert done["state"] == "succeeded", done["error"]
    assert done["progress"] == {"fraction": 0.5, "message": "half\ufffdway \ufffd"}
    assert done["metrics"] == {"rows\ufffd": 1.0}
    printed = [line["line"] for line in all_logs(server, job["id"]) if line["stream"] == "stdout"]
    assert printed == ["before", "after"]
    job = server.submit("details-nul")
    done = server.wait_state(job["id"], "succeeded", "failed", timeout=60)
    assert done["state"] == "succeeded", done["error"]
    assert done["details"] == {"key\ufffd": ["value\ufffd", "\ufffd"]}
