"""The real ``jobyard`` client commands, run as subprocesses against a real server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pytest

from jobyard.cli.common import parse_assignments, parse_value
from jobyard.cli.render import short_moment
from jobyard.units import duration
from tests.harness import Server, free_port, shared_server, wait_for

COMMANDS = [
    "submit", "jobs", "show", "start", "pause", "resume", "kill", "restart", "rm", "logs",
    "watch", "types",
]  # fmt: skip


server = shared_server(backends=["sqlite"])


def environment(server_url: str) -> dict[str, str]:
    return os.environ | {"JOBYARD_SERVER": server_url, "COLUMNS": "200", "NO_COLOR": "1"}


def jobyard(server: Server, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobyard", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(server.url),
        check=False,
    )


def ok(server: Server, *args: str) -> str:
    result = jobyard(server, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def as_json(server: Server, *args: str) -> Any:
    return json.loads(ok(server, *args, "--json"))


def error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The one error line of a command that failed with ``code``."""
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jobyard: error: ")
    return lines[0]


def tag() -> str:
    return uuid.uuid4().hex[:10]


def test_the_version_is_an_option_and_a_command(server: Server) -> None:
    from jobyard import __version__

    assert ok(server, "--version") == ok(server, "version") == f"{__version__}\n"


def test_values_are_json_when_they_parse() -> None:
    assert parse_assignments(["n=3", "flag=true", "s=abc", "x=1.5", "l=[1,2]", "e=", "q=a=b"]) == {
        "n": 3,
        "flag": True,
        "s": "abc",
        "x": 1.5,
        "l": [1, 2],
        "e": "",
        "q": "a=b",
    }
    assert parse_value('"3"') == "3"
    assert parse_value("null") is None
    assert parse_value("NaN") == "NaN"
    # No JSON number once parsed (it overflowed to infinity): sent as written, refused there.
    assert parse_value("1e400") == "1e400"
    assert parse_value("[1, -1e999]") == "[1, -1e999]"
    assert parse_value("1e308") == 1e308
    assert parse_value("{bad") == "{bad"
    assert parse_value("[" * 5000) == "[" * 5000  # nested past the stack: sent as written


def test_a_string_param_keeps_its_text_and_a_nullable_one_takes_null() -> None:
    schema = {"properties": {"s": {"type": "string"}, "n": {"type": ["string", "null"]}}}
    pairs = ["s=123", "n=456"]
    assert parse_assignments(pairs, schema) == {"s": "123", "n": "456"}
    assert parse_assignments(["s=null", "n=null"], schema) == {"s": "null", "n": None}
    # A pydantic model's Optional[str] says it with alternatives (it was sent as 123).
    optional = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    either = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    model = {"properties": {"o": optional, "e": either}}
    assert parse_assignments(["o=123", "e=123"], model) == {"o": "123", "e": 123}
    assert parse_assignments(["o=null"], model) == {"o": None}


def test_submit_with_arguments_and_options(server: Server) -> None:
    name = tag()
    job = as_json(
        server, "submit", "echo", "text=hello", "repeat=2", "--hold", "--priority", "5",
        "--queue", "default", "--name", name,
    )  # fmt: skip
    assert job["args"] == {"text": "hello", "repeat": 2}
    assert (job["state"], job["priority"], job["name"]) == ("held", 5, name)
    assert "submitted" in ok(server, "submit", "echo", "text=1", "--hold")
    typed = as_json(server, "submit", "echo", "text=123", "repeat=3", "--hold")
    assert typed["args"] == {"text": "123", "repeat": 3}  # text is declared a string
    later = as_json(server, "submit", "echo", "text=x", "--run-at", "2099-01-01T06:00:00+00:00")
    assert (later["state"], later["run_at"]) == ("scheduled", "2099-01-01T06:00:00+00:00")
    ok(server, "kill", str(later["id"]))


def test_bytes_that_are_not_utf8_in_a_word_are_refused_in_one_line(server: Server) -> None:
    # A shell passes a word's bytes as they are; Python holds \xff as a lone surrogate.
    word = "caf\udcff"
    refused = jobyard(server, "submit", "echo", f"text={word}")
    assert error_line(refused, 2) == (
        "jobyard: error: bad argument 'text': it holds bytes that are not UTF-8 text"
    )
    searched = jobyard(server, "jobs", "--search", word)
    assert (
        error_line(searched, 2) == "jobyard: error: an argument holds bytes that are not UTF-8 text"
    )


def test_a_repeated_idempotency_key_is_said_to_be_the_first_job(server: Server) -> None:
    key = tag()
    first = ok(server, "submit", "echo", "text=once", "--hold", "--idempotency-key", key)
    job_id = first.split()[1]
    assert first.strip() == f"job {job_id} submitted (echo): held"
    again = ok(server, "submit", "echo", "text=once", "--hold", "--idempotency-key", key)
    assert again.strip() == f"job {job_id} already submitted with key {key!r} (echo): held"
    ok(server, "kill", job_id)


def test_submit_wait_tells_how_the_job_ended(server: Server) -> None:
    name = tag()
    good = jobyard(server, "submit", "echo", "text=hi", "--name", name, "--wait")
    assert good.returncode == 0, good.stderr
    assert "succeeded" in good.stdout
    [job] = as_json(server, "jobs", "--search", name)["items"]
    runtime = job["resources"]["runtime_seconds"]
    assert good.stdout.strip().endswith(f", ran {duration(runtime)}")  # "ran 12 ms", not "0.0s"
    [row] = [row for row in ok(server, "jobs", "--search", name).splitlines() if name in row]
    assert row.split("│")[-2].strip() == duration(runtime, compact=True)  # a narrow column
    bad = jobyard(server, "submit", "fail", "code=4", "--wait")
    assert bad.returncode == 1
    assert "failed, exit code 4, ran " in bad.stdout  # the code once, not as its error too
    ended = json.loads(jobyard(server, "submit", "fail", "--wait", "--json").stdout)
    assert (ended["state"], ended["exit_code"]) == ("failed", 3)


def test_submit_follow_streams_output_and_states(server: Server) -> None:
    result = jobyard(server, "submit", "lines", "count=3", "--follow")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["line 0", "line 1", "line 2"]
    assert "err 2" in result.stderr
    assert "] running" in result.stderr
    assert result.stderr.strip().endswith("succeeded")
    failed = jobyard(server, "submit", "fail", "code=5", "-f")
    assert failed.returncode == 1
    assert "failed (attempt 3): exit code 5" in failed.stderr
    events = [
        json.loads(x)
        for x in ok(server, "submit", "echo", "text=j", "-f", "--json").split("\n")
        if x
    ]
    assert events[0]["event"] == "state"
    assert events[-1] == {"id": None, "event": "close", "data": events[-1]["data"]}
    assert events[-1]["data"]["state"] == "succeeded"


@pytest.mark.parametrize("command", ["submit", "logs"])
def test_a_job_removed_while_followed_is_not_found(server: Server, command: str) -> None:
    name = tag()
    # A job that outlives the kill's grace: removed while live, never ended "killed" first
    # (a sleep could end killed before its removal, and the follower said so, exit 1).
    if command == "logs":
        job_id = server.submit("deaf", name=name)["id"]
        args = ["logs", "-f", str(job_id)]
    else:
        args = ["submit", "deaf", "--follow", "--name", name]
    follower = subprocess.Popen(
        [sys.executable, "-m", "jobyard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(server.url),
    )
    try:
        found = wait_for(lambda: as_json(server, "jobs", "--search", name)["items"])
        server.wait_state(found[0]["id"], "running")
        ok(server, "rm", "--force", str(found[0]["id"]))
        _, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert follower.returncode == 3, err  # as --wait says (it exited 1, or 0, saying nothing)
    assert err.strip().splitlines()[-1].startswith("jobyard: error:")


def test_jobs_table_filters_and_json(server: Server) -> None:
    name = tag()
    ids = [
        as_json(server, "submit", "echo", f"text={i}", "--hold", "--name", name)["id"]
        for i in range(3)
    ]
    sleeper = as_json(server, "submit", "sleep", "--hold", "--name", name)["id"]
    ok(server, "kill", str(ids[0]))
    table = ok(server, "jobs", "--search", name)
    rows = [row for row in table.splitlines() if name in row]
    assert [int(row.split("│")[1]) for row in rows] == [sleeper, *reversed(ids)]  # newest first
    assert [row.split("│")[4].strip() for row in rows] == ["held", "held", "held", "killed"]
    assert "page 1 of 1 · 4 jobs" in table
    assert as_json(server, "jobs", "--search", name, "--state", "killed")["total"] == 1
    assert as_json(server, "jobs", "--search", name, "--state", "held,killed")["total"] == 4
    only_sleep = as_json(server, "jobs", "--search", name, "--type", "sleep")["items"]
    assert [job["id"] for job in only_sleep] == [sleeper]
    assert as_json(server, "jobs", "--search", name, "--queue", "nowhere")["total"] == 0
    second = as_json(
        server, "jobs", "--search", name, "--sort", "id", "--per-page", "1", "--page", "2"
    )
    assert (second["page"], second["per_page"], second["total"]) == (2, 1, 4)
    assert [job["id"] for job in second["items"]] == [ids[1]]
    bad = jobyard(server, "jobs", "--state", "sleeping")
    assert "state: expected one of" in error_line(bad, 2)


def test_show_details(server: Server) -> None:
    job_id = as_json(server, "submit", "echo", "text=shown", "--wait")["id"]
    panel = ok(server, "show", str(job_id))
    assert f"job {job_id}" in panel
    for text in ("succeeded", "echo shown", '"text": "shown"', "exit code", "runtime", "output"):
        assert text in panel
    detail = as_json(server, "show", str(job_id))
    assert detail["resources"]["log_lines"] >= 1
    rows = {line.split()[1]: line.split()[2] for line in panel.splitlines() if "│ created" in line}
    created = datetime.fromisoformat(detail["created_at"])
    assert rows == {"created": short_moment(created)}  # the jobs table's style: 16:08:26 today
    assert "no job with id 999999" in error_line(jobyard(server, "show", "999999"), 3)


def test_pause_resume_and_kill_a_sleeping_job(server: Server) -> None:
    job_id = as_json(server, "submit", "sleep", "seconds=30")["id"]
    server.wait_state(job_id, "running")
    assert "pause requested" in ok(server, "pause", str(job_id))
    server.wait_state(job_id, "paused")
    assert "cannot pause a job that is paused" in error_line(
        jobyard(server, "pause", str(job_id)), 4
    )
    assert "resume requested" in ok(server, "resume", str(job_id))
    server.wait_state(job_id, "running")
    assert as_json(server, "kill", str(job_id))["control"] == "kill"
    server.wait_state(job_id, "killed")
    error_line(jobyard(server, "kill", str(job_id)), 4)


def test_start_releases_a_held_job(server: Server) -> None:
    job_id = as_json(server, "submit", "echo", "text=held", "--hold")["id"]
    assert ok(server, "start", str(job_id)).strip() in {
        f"job {job_id}: queued",
        f"job {job_id}: running",
    }
    server.wait_state(job_id, "succeeded")


def test_restart_and_rm(server: Server) -> None:
    old = as_json(server, "submit", "echo", "text=first", "--wait")["id"]
    new = as_json(server, "restart", str(old), "text=second")
    assert new["restarted_from"] == old
    assert new["args"]["text"] == "second"
    server.wait_state(new["id"], "succeeded")
    again = error_line(jobyard(server, "restart", str(old)), 4)
    assert again.endswith(
        f"already restarted as job {new['id']}; restart job {new['id']} to run it again"
    )
    assert "restarted as job" in ok(server, "restart", str(new["id"]))
    assert ok(server, "rm", str(new["id"])).strip() == f"job {new['id']} removed"
    error_line(jobyard(server, "show", str(new["id"])), 3)
    live = as_json(server, "submit", "sleep", "seconds=30")["id"]
    server.wait_state(live, "running")
    assert "kill it first" in error_line(jobyard(server, "rm", str(live)), 4)
    ok(server, "rm", "--force", str(live))
    error_line(jobyard(server, "show", str(live)), 3)


def test_logs_split_streams_and_follow(server: Server) -> None:
    job_id = as_json(server, "submit", "lines", "count=3", "--wait")["id"]
    result = jobyard(server, "logs", str(job_id))
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["line 0", "line 1", "line 2"]
    assert [x for x in result.stderr.splitlines() if x.startswith("err")] == [
        "err 0",
        "err 1",
        "err 2",
    ]
    assert f"[job {job_id}] attempt 1 started" in result.stderr
    records = [json.loads(x) for x in ok(server, "logs", str(job_id), "--json").splitlines()]
    assert {r["stream"] for r in records} == {"stdout", "stderr", "system"}
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)
    after = ok(server, "logs", str(job_id), "--json", "--after", str(records[-2]["seq"]))
    assert [json.loads(x) for x in after.splitlines()] == records[-1:]

    running = as_json(server, "submit", "lines", "count=200")["id"]
    followed = jobyard(server, "logs", "-f", str(running))
    assert followed.returncode == 0
    assert followed.stdout.splitlines() == [f"line {i}" for i in range(200)]
    error_line(jobyard(server, "logs", "999999"), 3)


def test_types_list_and_show(server: Server) -> None:
    table = ok(server, "types")
    for name in ("echo", "sleep", "py-count", "text*"):
        assert name in table
    echo = ok(server, "types", "echo")
    for text in ("repeat", "integer", "≥ 1", "≤ 10", "format date", "echo {text}"):
        assert text in echo
    assert as_json(server, "types", "echo")["params"]["required"] == ["text"]
    listing = as_json(server, "types")
    assert listing["total"] == len(listing["items"])
    error_line(jobyard(server, "types", "nope"), 3)


def test_bad_input_is_one_line_and_exit_2(server: Server) -> None:
    assert "bad argument 'text'" in error_line(jobyard(server, "submit", "echo", "text"), 2)
    assert "bad argument '=x'" in error_line(jobyard(server, "submit", "echo", "=x"), 2)
    unknown = error_line(jobyard(server, "submit", "nope", "a=1"), 2)
    assert unknown == "jobyard: error: the submission is invalid (type: unknown job type 'nope')"
    invalid = error_line(jobyard(server, "submit", "echo", "repeat=0"), 2)
    assert invalid.startswith("jobyard: error: the job arguments are invalid (")
    assert "args.text" in invalid
    assert "args.repeat" in invalid
    assert "--run-at" in error_line(
        jobyard(server, "submit", "echo", "text=x", "--run-at", "soon"), 2
    )
    assert jobyard(server, "submit", "echo", "--priority", "high").returncode == 2


def test_an_unreachable_server_is_exit_5(server: Server) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    for args in (["jobs"], ["submit", "echo", "text=x"], ["logs", "1", "-f"], ["watch", "--once"]):
        result = jobyard(server, *args, "--server", down)
        assert "cannot reach" in error_line(result, 5)


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("ht!tp://x", "expected http://HOST:PORT"),
        ("", "expected http://HOST:PORT"),
        ("ftp://127.0.0.1:8000", "expected http://HOST:PORT"),
        ("http://127.0.0.1:port", "not a URL"),
        ("http://127.0.0.1:8000/api/v1", "without a path"),
        ("http://127.0.0.1:8000//", "without a path"),
    ],
)
def test_a_server_address_that_is_not_one_is_a_usage_error(
    server: Server, address: str, said: str
) -> None:
    # Taken for a server that was down (exit 5), or asked for paths under it (Not Found).
    assert said in error_line(jobyard(server, "jobs", "--server", address), 2)


def test_a_server_root_with_its_slash_or_without_its_scheme_is_the_server(
    server: Server,
) -> None:
    assert jobyard(server, "jobs", "--server", f"{server.url}/").returncode == 0
    bare = server.url.removeprefix("http://")  # HOST:PORT, as the client takes it
    assert jobyard(server, "jobs", "--server", bare).returncode == 0


def test_watch_once(server: Server) -> None:
    job_id = as_json(server, "submit", "sleep", "seconds=30", "--name", "watched")["id"]
    server.wait_state(job_id, "running")
    table = ok(server, "watch", "--once")
    assert "watched" in table
    assert "running" in table
    assert "1 running" in table
    assert "watched" not in ok(server, "watch", "--once", "--state", "queued")
    ok(server, "kill", str(job_id))
    server.wait_state(job_id, "killed")


# how a shell without job control starts a command put in the background: SIGINT ignored
IGNORING_SIGINT = ["sh", "-c", 'trap "" INT; exec "$@"', "sh"]


@dataclass
class Watch:
    proc: subprocess.Popen[str]
    errors: IO[str]
    lines: list[str] = field(default_factory=list)

    def shows(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def stderr(self) -> str:
        self.errors.seek(0)
        return self.errors.read()


@contextmanager
def watching(server: Server, tmp_path: Path, prefix: list[str]) -> Iterator[Watch]:
    """``jobyard watch`` not on a terminal; ``lines`` fills as it prints; killed at the end."""
    command = [*prefix, sys.executable, "-m", "jobyard", "watch", "--interval", "0.5"]
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "text": True}
    with (
        (tmp_path / "watch.err").open("w+") as errors,
        subprocess.Popen(command, stderr=errors, env=environment(server.url), **options) as proc,
    ):
        watch = Watch(proc, errors)
        reader = threading.Thread(target=lambda: watch.lines.extend(proc.stdout or ()))
        reader.start()
        try:
            yield watch
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            reader.join()


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_watch_prints_changes_until_sigint(server: Server, tmp_path: Path, sigint: str) -> None:
    job_id = as_json(server, "submit", "sleep", "seconds=30", "--name", "watched")["id"]
    server.wait_state(job_id, "running")
    prefix = IGNORING_SIGINT if sigint == "ignored" else []
    with watching(server, tmp_path, prefix) as watch:
        # not on a terminal, it prints the table again whenever the jobs change
        wait_for(lambda: watch.shows("1 running"), what="the first table")
        ok(server, "kill", str(job_id))
        wait_for(lambda: watch.shows("no jobs"), what="a table without it")
        watch.proc.send_signal(signal.SIGINT)
        assert watch.proc.wait(timeout=30) == 0, watch.stderr()


def test_watch_once_counts_the_states_it_was_asked_for(server: Server) -> None:
    ended = as_json(server, "submit", "echo", "text=watched", "--wait")
    held = as_json(server, "submit", "echo", "text=watched", "--hold")
    table = ok(server, "watch", "--once", "--state", "succeeded,held", "--type", "echo")
    header = " ".join(table.split("┏")[0].split())  # however the terminal's width wrapped it
    assert re.search(r" · \d+ held · \d+ succeeded", header), header  # the live states first
    assert f"{ended['id']} " in table
    ok(server, "kill", str(held["id"]))


def test_watch_ends_on_a_sigint_while_it_starts(server: Server, tmp_path: Path) -> None:
    with watching(server, tmp_path, []) as watch:
        watch.proc.send_signal(signal.SIGINT)  # Python is starting, importing or connecting
        # its exit code tells where the signal landed (-SIGINT, 1, 130 or 0); it must end
        watch.proc.wait(timeout=30)


GROUPS = {"types": "list"}  # groups: their default subcommand takes the options


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(server: Server, command: str) -> None:
    words = [command, GROUPS[command]] if command in GROUPS else [command]
    text = ok(server, *words, "--help")
    assert f"Usage: jobyard {' '.join(words)}" in text
    assert "--server" in text
    assert "JOBYARD_SERVER" in text


def test_the_top_level_help_lists_the_client_commands(server: Server) -> None:
    text = ok(server, "--help")
    for command in COMMANDS:
        assert command in text


def test_brackets_in_what_users_wrote_are_shown_as_written(server: Server) -> None:
    name = f"bracketed-{tag()}"
    definition = {
        "command": ["echo", "{code}"],
        "description": "uses [bold]x[/bold]",
        "params": {"code": {"type": "string", "pattern": "^[a-z]+$"}},
    }
    assert server.client.put(f"/api/v1/job-types/{name}", json=definition).status_code == 201
    shown = ok(server, "types", name)
    assert "uses [bold]x[/bold]" in shown  # not read as terminal styling
    assert "^[a-z]+$" in shown


def test_submit_waits_for_the_jobs_it_depends_on(server: Server) -> None:
    first = as_json(server, "submit", "echo", "text=first", "--hold")
    second = as_json(server, "submit", "echo", "text=second", "--hold")
    waiting = as_json(
        server, "submit", "echo", "text=then",
        "--depends-on", str(first["id"]), "--depends-on", f"{second['id']}:finished",
    )  # fmt: skip
    assert waiting["state"] == "waiting"
    assert [(d["job"], d["on"]) for d in waiting["depends_on"]] == [
        (first["id"], "succeeded"),
        (second["id"], "finished"),
    ]
    for bad in ("x", "7:maybe", ":failed", "²", " 7"):
        said = error_line(jobyard(server, "submit", "echo", "text=x", "--depends-on", bad), 2)
        assert f"--depends-on {bad!r}: expected a job id" in said
    ok(server, "kill", str(second["id"]))
    ok(server, "start", str(first["id"]))
    assert server.wait_state(waiting["id"], "succeeded")["depends_on"][0]["job"] == first["id"]


def test_show_has_a_class_jobs_details(server: Server) -> None:
    job_id = as_json(server, "submit", "py-resize", "count=50", "upto=20")["id"]
    server.wait_state(job_id, "running")
    wait_for(lambda: "resized 20" in ok(server, "logs", str(job_id)), what="the images resized")
    ok(server, "kill", str(job_id))
    job = server.wait_state(job_id, "killed")
    assert job["details"] == {"resized": 20, "of": 50}
    panel = ok(server, "show", str(job_id))
    assert '"resized": 20' in panel
