"""The CLI in a terminal and in a shell: progress bars on a pty (plain lines in a pipe),
tables that fit 80 columns, and shell completion asked of a real server."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from jobyard.cli import complete
from jobyard.cli.app import app
from jobyard.states import JobState
from tests.harness import ADMIN, Server, shared_server
from tests.integration.test_cli import as_json, environment, jobyard, ok, tag

server = shared_server(backends=["sqlite"])
# A completion waits a second by default; the machines running the tests may be slower.
pytestmark = pytest.mark.usefixtures("patient_completion")
BAR = "━"  # what Rich draws a progress bar with


@pytest.fixture
def patient_completion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBYARD_COMPLETION_TIMEOUT", "30")


def on_pty(server: Server, *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run a command with its stdout and stderr on a pseudo-terminal; its exit code and output."""
    leader, follower = pty.openpty()
    env = environment(server.url) | {"TERM": "xterm-256color", "COLUMNS": "100"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobyard", *args], stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the command has ended
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(timeout=10), b"".join(chunks).decode(errors="replace")


def test_submit_follow_draws_a_bar_on_a_terminal_and_lines_in_a_pipe(server: Server) -> None:
    code, output = on_pty(server, "submit", "tick", "count=4", "pause=0.2", "--follow")
    assert code == 0, output
    assert BAR in output
    assert all(f"tick {i}" in output for i in range(4))
    assert "] succeeded" in output
    piped = jobyard(server, "submit", "tick", "count=2", "pause=0.1", "--follow")
    assert piped.returncode == 0
    assert piped.stdout.splitlines() == ["tick 0", "tick 1"]
    assert BAR not in piped.stdout + piped.stderr


def test_run_wait_draws_a_bar_on_a_terminal_and_lines_in_a_pipe(server: Server) -> None:
    code, output = on_pty(server, "run", "diamond", "--wait")
    assert code == 0, output
    assert BAR in output
    assert "nodes done" in output
    assert "of diamond: succeeded" in output
    piped = jobyard(server, "run", "diamond", "--wait")
    assert piped.returncode == 0, piped.stderr
    assert BAR not in piped.stdout + piped.stderr
    run_id = piped.stdout.split()[1]
    assert f"[run {run_id}] report: succeeded" in piped.stderr.splitlines()
    assert piped.stdout.splitlines()[0] == f"run {run_id} of diamond: succeeded"


def test_tables_fit_80_columns_without_cutting_names(server: Server, tmp_path: Path) -> None:
    long_type = f"nightly-export-{tag()}"  # 25 characters
    long_queue = "queue-for-the-nightly-exports"  # declared by the server's file
    file = tmp_path / "types.yaml"
    file.write_text(
        f"{long_type}:\n  description: {'a long description ' * 6}\n  command: [echo, x]\n"
        f"  queue: {long_queue}\n  params:\n    a_rather_long_parameter_name: {{type: integer}}\n"
    )
    ok(server, "types", "add", str(file))
    job_id = as_json(server, "submit", long_type, "--hold", "--name", f"monthly-{'x' * 30}")["id"]
    schedule = f"long-schedule-{tag()}"
    ok(server, "schedules", "add", schedule, "--type", long_type, "--cron", "*/15 9-17 * * mon-fri")
    worker = as_json(server, "workers")["items"][0]["name"]
    narrow = environment(server.url) | {"COLUMNS": "80"}
    expected = {
        "jobs": [str(job_id), long_type],
        "types": [long_type],
        "workers": [worker],
        "queues": [long_queue],
        "schedules": [schedule, long_type],
        "watch --once --state held": [str(job_id), long_type],
    }
    for command, names in expected.items():
        result = subprocess.run(
            [sys.executable, "-m", "jobyard", *command.split()],
            capture_output=True, text=True, env=narrow, timeout=60, check=True,
        )  # fmt: skip
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, (command, result.stdout)
        for name in names:
            assert any(name in line for line in lines), (command, name, result.stdout)
        assert "…" not in result.stdout, (command, result.stdout)


def test_a_long_job_name_folds_and_leaves_no_column_out_in_80_columns(server: Server) -> None:
    name = f"monthly-report-for-the-warehouse-team-{tag()}-{'x' * 9}"  # 58 characters
    job_id = as_json(server, "submit", "echo", "text=x", "--hold", "--name", name)["id"]
    narrow = environment(server.url) | {"COLUMNS": "80"}
    for command in ("jobs --state held --type echo", "watch --once --state held --type echo"):
        result = subprocess.run(
            [sys.executable, "-m", "jobyard", *command.split()],
            capture_output=True, text=True, env=narrow, timeout=60, check=True,
        )  # fmt: skip
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, (command, result.stdout)
        header = next(line for line in lines if line.startswith("┃"))
        for column in ("id", "type", "name", "state", "progress", "attempt", "created", "runtime"):
            assert f" {column} " in header, (command, column, result.stdout)
        assert any(re.match(rf"│ *{job_id} │", line) for line in lines), (command, result.stdout)
        assert "…" not in result.stdout, (command, result.stdout)


def context(**params: object) -> typer.Context:
    ctx = typer.Context(typer.main.get_command(app))
    ctx.params = dict(params)
    return ctx


def test_completion_functions_ask_the_server(server: Server) -> None:
    ctx = context(server=server.url, auth_user=ADMIN[0], auth_password=ADMIN[1])
    types = dict(complete.job_types(ctx, ""))
    assert {"echo", "sleep", "lines"} <= set(types)
    assert types["lines"] == "Print numbered lines on stdout and stderr"
    assert [name for name, _ in complete.job_types(ctx, "echo,sl")] == ["echo,sleep", "echo,slow"]
    params = dict(complete.parameters(context(type_="echo", args=["text=x"], **ctx.params), ""))
    assert set(params) == {"repeat=", "day="}  # text is given already
    assert params["repeat="] == "integer"
    assert complete.parameters(context(type_="echo", **ctx.params), "text=") == []
    # bash breaks text=day into text, = and day: day is a value there, not a name given
    split = dict(
        complete.parameters(context(type_="echo", args=["text", "=", "day"], **ctx.params), "")
    )
    assert set(split) == {"repeat=", "day="}
    for typed in (["text", "="], ["text", "=", "x", "="], ["text="]):  # a value comes next
        assert complete.parameters(context(type_="echo", args=typed, **ctx.params), "") == []
    assert complete.parameters(context(type_="echo", args=["text", "="], **ctx.params), "ab") == []
    job_id = as_json(server, "submit", "sleep", "--hold")["id"]
    assert (str(job_id), "sleep held") in complete.job_ids(ctx, "")
    assert str(job_id) in dict(complete.live_job_ids(ctx, ""))
    ok(server, "kill", str(job_id))
    assert str(job_id) not in dict(complete.live_job_ids(ctx, ""))
    assert [name for name, _ in complete.workers(ctx, "")] == [
        item["name"] for item in as_json(server, "workers")["items"]
    ]
    assert "limited" in dict(complete.queues(ctx, ""))


def test_completion_fails_silently(server: Server) -> None:
    assert complete.job_types(context(server="http://127.0.0.1:9"), "") == []
    wrong = context(server=server.url, auth_user="admin", auth_password="wrong")
    assert complete.job_ids(wrong, "") == []
    assert complete.parameters(context(server=server.url, type_="nope"), "") == []


def test_states_complete_without_a_server() -> None:
    assert [name for name, _ in complete.states("")] == [state.value for state in JobState]
    assert complete.states("failed,ki") == [("failed,killed", "")]
    assert ("failed,killed", "") in complete.states("failed,")
    assert ("failed,failed", "") not in complete.states("failed,")


def bash_complete(server: Server, words: str, cword: int) -> list[str]:
    env = environment(server.url) | {
        "_JOBYARD_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword),
    }  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "jobyard"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_completion_through_typer(server: Server) -> None:
    assert "echo" in bash_complete(server, "jobyard submit ec", 2)
    assert bash_complete(server, "jobyard submit echo ", 3) == ["text=", "repeat=", "day="]
    assert bash_complete(server, "jobyard jobs --state fai", 3) == ["failed"]
    assert "limited" in bash_complete(server, "jobyard queues pause ", 3)
    group = bash_complete(server, "jobyard types ", 2)
    assert {"list", "show", "add", "edit", "rm", "echo"} <= set(group)
    worker = as_json(server, "workers")["items"][0]["name"]
    assert {"list", "show", worker} <= set(bash_complete(server, "jobyard workers ", 2))
    assert worker in bash_complete(server, "jobyard workers show ", 3)
    assert {"list", "show", "diamond"} <= set(bash_complete(server, "jobyard workflows ", 2))
    assert bash_complete(server, "jobyard workflows show dia", 3) == ["diamond"]
    assert bash_complete(server, "jobyard run dia", 2) == ["diamond"]
    assert bash_complete(server, "jobyard notifications ", 2) == ["list", "channels"]


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="needs bash")
def test_install_completion_for_bash(server: Server, tmp_path: Path) -> None:
    # Typer finds the shell among the parent processes; a test names it instead.
    env = environment(server.url) | {"HOME": str(tmp_path), "SHELL": "/bin/bash"}
    env["_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION"] = "1"
    shown = subprocess.run(
        [sys.executable, "-m", "jobyard", "--show-completion", "bash"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "_JOBYARD_COMPLETE=complete_bash" in shown.stdout
    subprocess.run(
        [sys.executable, "-m", "jobyard", "--install-completion", "bash"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    script = tmp_path / ".bash_completions" / "jobyard.sh"
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()
    # bash itself: the installed function completes a job type through the real server
    launcher = tmp_path / "bin" / "jobyard"
    launcher.parent.mkdir()
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m jobyard "$@"\n')
    launcher.chmod(0o755)
    env["PATH"] = f"{launcher.parent}:{env['PATH']}"

    def in_bash(words: str) -> list[str]:
        """COMPREPLY for COMP_WORDS=(words), the last word being completed."""
        line = f"source {script}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); "
        line += 'cd /; _jobyard_completion jobyard; echo "${COMPREPLY[@]}"'
        answer = subprocess.run(
            ["/bin/bash", "-c", line], capture_output=True, text=True, env=env, timeout=60
        )
        assert answer.returncode == 0, answer.stderr
        return answer.stdout.split()

    assert in_bash("jobyard submit py-c") == ["py-count"]
    assert in_bash("jobyard submit echo ''") == ["text=", "repeat=", "day="]
    # bash breaks `text=` at the `=` (COMP_WORDBREAKS): a name offered there went into the value
    assert in_bash("jobyard submit echo text = ''") == []
    assert in_bash("jobyard submit echo text = ab") == []
    assert in_bash("jobyard submit echo text = hi ''") == ["repeat=", "day="]
