"""The CLI over the whole API: queues, schedules, types from YAML, many jobs at once,
``logs --tail``, ``jobs --since``, ``show`` with samples, one worker or workflow, the
notification channels, the server's health — real commands, real server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jobyard.units import duration, size
from tests.harness import Launcher, Server, free_port, shared_server, wait_for
from tests.integration.test_cli import as_json, error_line, jobyard, ok, tag

server = shared_server(backends=["sqlite"])


def test_queues_list_pause_and_resume(server: Server) -> None:
    names = [queue["name"] for queue in as_json(server, "queues")["items"]]
    assert {"default", "limited"} <= set(names)
    limited = as_json(server, "queues", "limited")
    assert (limited["paused"], limited["max_running"]) == (False, 2)
    assert ok(server, "queues", "pause", "limited").strip() == "queue limited: paused"
    assert as_json(server, "queues", "show", "limited")["paused"] is True
    assert "paused" in ok(server, "queues")
    assert as_json(server, "queues", "resume", "limited")["paused"] is False
    assert ok(server, "queues", "resume", "limited").strip() == "queue limited: open"
    assert "no queue named 'nope'" in error_line(jobyard(server, "queues", "pause", "nope"), 3)


def test_schedules_from_flags(server: Server) -> None:
    name = f"s-{tag()}"
    added = ok(server, "schedules", "add", name, "--type", "echo", "--every", "15m", "text=hi")
    assert added.startswith(f"schedule {name} added: every 15 minutes; next ")
    shown = as_json(server, "schedules", name)
    assert (shown["target"], shown["args"], shown["paused"]) == (
        {"job_type": "echo"},
        {"text": "hi"},
        False,
    )
    assert name in [item["name"] for item in as_json(server, "schedules")["items"]]
    assert ok(server, "schedules", "pause", name).strip() == f"schedule {name}: paused"
    assert as_json(server, "schedules", "show", name)["next_fire"] is None
    assert ok(server, "schedules", "resume", name).startswith(f"schedule {name}: active; next ")
    again = jobyard(server, "schedules", "add", name, "--type", "echo", "--every", "1h", "text=x")
    assert error_line(again, 4) == f"jobyard: error: schedule {name}: schedule {name!r} exists"
    assert ok(server, "schedules", "rm", name).strip() == f"schedule {name} removed"
    error_line(jobyard(server, "schedules", "show", name), 3)
    bad = error_line(
        jobyard(server, "schedules", "add", "x1", "--type", "echo", "--cron", "0 99 * * *"), 2
    )
    assert "schedule x1: cron: invalid cron expression" in bad
    workflow = ["schedules", "add", "x3", "--workflow", "broken", "--cron", "0 2 * * *"]
    bad = error_line(jobyard(server, *workflow, "bogus=1", "code=abc"), 2)
    assert "schedule x3: args.bogus: no node's job type declares this param" in bad
    assert "; args.code: for node 'bad': " in bad
    run = error_line(jobyard(server, "run", "diamond", "bogus=1"), 2)
    said = "args.bogus: no node's job type declares this param"
    assert run.endswith(f": {said}")  # the problem's detail says it: not again after it
    assert run.count(said) == 1
    assert "--file goes alone" in error_line(
        jobyard(server, "schedules", "add", "x2", "--file", "f.yaml"), 2
    )


def test_schedules_from_a_yaml_file(server: Server, tmp_path: Path) -> None:
    first, second = f"a-{tag()}", f"b-{tag()}"
    good = tmp_path / "schedules.yaml"
    good.write_text(
        f"schedules:\n  {first}: {{job_type: echo, args: {{text: x}}, cron: '0 2 * * *'}}\n"
        f"  {second}: {{workflow: diamond, every: 1h, paused: true}}\n"
    )
    added = as_json(server, "schedules", "add", "--file", str(good))
    assert [item["name"] for item in added["items"]] == [first, second]
    assert added["items"][1]["paused"] is True
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"{tag()}:\n  job_type: echo\n  evry: 1h\n")
    line = error_line(jobyard(server, "schedules", "add", "-f", str(bad)), 2)
    assert f"{bad}: " in line
    assert ".evry: unknown key; did you mean 'every'?" in line


def test_types_add_edit_and_rm_from_yaml(server: Server, tmp_path: Path) -> None:
    greet, bye = f"greet-{tag()}", f"bye-{tag()}"
    file = tmp_path / "types.yaml"
    file.write_text(
        f"job_types:\n  {greet}:\n    description: Say hello\n"
        f"    command: [echo, hello, '{{who}}']\n"
        "    params:\n      who: {type: string, default: world}\n"
        f"  {bye}:\n    command: [echo, bye]\n"
    )
    assert ok(server, "types", "add", str(file)).splitlines() == [
        f"job type {greet} added (command)",
        f"job type {bye} added (command)",
    ]
    assert as_json(server, "types", greet)["defaults"] == {"who": "world"}
    again = error_line(jobyard(server, "types", "add", str(file)), 4)
    assert f"{file}: job_types.{greet}: job type '{greet}' exists" in again
    file.write_text(f"name: {greet}\ndescription: Say hi\ncommand: [echo, hi]\n")
    assert ok(server, "types", "edit", str(file)).strip() == f"job type {greet} saved (command)"
    assert as_json(server, "types", "show", greet)["description"] == "Say hi"
    assert ok(server, "types", "rm", greet).strip() == f"job type {greet} removed"
    error_line(jobyard(server, "types", greet), 3)
    assert "in the configuration file" in error_line(jobyard(server, "types", "rm", "echo"), 4)


def test_bad_type_files_are_one_line_with_file_and_field(server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("job_types:\n  broken:\n    comand: [x]\n    params:\n      a: {type: nope}\n")
    line = error_line(jobyard(server, "types", "add", str(bad)), 2)
    assert f"{bad}: job_types.broken.params.a.type: Input should be" in line
    assert "job_types.broken.comand: unknown key; did you mean 'command'?" in line
    broken = tmp_path / "broken.yaml"
    broken.write_text("job_types:\n  x: [1\n")
    assert f"{broken}:2: invalid YAML" in error_line(  # the last line, not past it
        jobyard(server, "types", "add", str(broken)), 2
    )
    missing = tmp_path / "missing.yaml"
    assert f"{missing}: cannot read: " in error_line(
        jobyard(server, "types", "add", str(missing)), 2
    )
    # Read as the server reads jobyard.yaml: no traceback, no key silently dropped.
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"job_types:\n  caf\xe9: {command: [x]}\n")
    assert f"{latin}:2: cannot read: not UTF-8 text (byte 0xe9)" in error_line(
        jobyard(server, "types", "add", str(latin)), 2
    )
    schedules = tmp_path / "twice.yaml"
    schedules.write_text("c: {job_type: echo, every: 1h}\nc: {job_type: echo, every: 2h}\n")
    assert f"{schedules}:2: c: written twice (also on line 1): keep one" in error_line(
        jobyard(server, "schedules", "add", "--file", str(schedules)), 2
    )
    # Values no database stores: one line naming the field (a traceback before).
    nan = tmp_path / "nan.yaml"
    nan.write_text("name: nan\ncommand: [echo]\nparams:\n  n: {type: number, default: .nan}\n")
    assert f"{nan}:4: params.n.default: must be a finite number" in error_line(
        jobyard(server, "types", "add", str(nan)), 2
    )
    inf = tmp_path / "inf.yaml"
    inf.write_text("inf: {job_type: echo, every: 1h, args: {text: .inf}}\n")
    assert f"{inf}:1: inf.args.text: must be a finite number" in error_line(
        jobyard(server, "schedules", "add", "--file", str(inf)), 2
    )
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    assert "expected a mapping" in error_line(jobyard(server, "types", "edit", str(listed)), 2)


def test_kill_many_prints_a_line_a_job_and_a_summary(server: Server) -> None:
    held = [as_json(server, "submit", "sleep", "--hold")["id"] for _ in range(2)]
    done = as_json(server, "submit", "echo", "text=x", "--wait")["id"]
    result = jobyard(server, "kill", *map(str, [*held, done]))
    assert result.returncode == 4, result.stderr
    assert result.stdout.splitlines() == [f"job {held[0]}: killed", f"job {held[1]}: killed"]
    errors = result.stderr.splitlines()
    assert errors[0] == f"jobyard: error: job {done}: cannot kill a job that is succeeded"
    assert errors[1] == "kill: 3 jobs: 2 done (2 killed), 1 refused"


def test_restart_selected_by_state_and_type(server: Server) -> None:
    kind = "py-fail"
    failed = [
        json.loads(jobyard(server, "submit", kind, "--wait", "--json").stdout)["id"]
        for _ in range(2)
    ]
    result = jobyard(server, "restart", "--state", "failed", "--type", kind, "--yes")
    assert result.returncode == 0, result.stderr
    restarted = [line.split()[1] for line in result.stdout.splitlines()]
    assert restarted == [str(job_id) for job_id in failed]
    assert result.stderr.strip() == "restart: 2 jobs: 2 done (2 restarted)"


def test_logs_tail(server: Server) -> None:
    job_id = as_json(server, "submit", "lines", "count=4", "--wait")["id"]
    every = [json.loads(line) for line in ok(server, "logs", str(job_id), "--json").splitlines()]
    tail = [
        json.loads(line)
        for line in ok(server, "logs", str(job_id), "--tail", "3", "--json").splitlines()
    ]
    assert tail == every[-3:]
    followed = [
        json.loads(line)
        for line in ok(server, "logs", str(job_id), "-n", "2", "-f", "--json").splitlines()
    ]
    assert followed == every[-2:]  # an ended job: the tail, then the follow ends at once
    assert ok(server, "logs", str(job_id), "--tail", "0") == ""


def test_logs_tail_then_follow_a_live_job(server: Server) -> None:
    job_id = as_json(server, "submit", "tick", "count=30", "pause=0.1")["id"]
    wait_for(lambda: len(server.client.get(f"/api/v1/jobs/{job_id}/logs").json()["items"]) > 6)
    lines = ok(server, "logs", str(job_id), "--tail", "2", "-f").splitlines()
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == list(range(numbers[0], 30))  # no gap, no repeat, up to the end
    assert numbers[0] >= 4  # it started from the tail, not from the first line


def test_jobs_since(server: Server) -> None:
    job_id = as_json(server, "submit", "echo", "text=since", "--hold")["id"]
    recent = as_json(server, "jobs", "--since", "1h")
    assert job_id in [item["id"] for item in recent["items"]]
    assert recent["total"] == len(recent["items"])
    by_id = as_json(server, "jobs", "--since", "2m", "--sort", "id", "--state", "held")
    assert job_id in [item["id"] for item in by_id["items"]]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert as_json(server, "jobs", "--since", future)["total"] == 0
    assert str(job_id) in ok(server, "jobs", "--since", "30m")
    assert "--since 'soon'" in error_line(jobyard(server, "jobs", "--since", "soon"), 2)
    before = as_json(server, "jobs", "--until", "1h", "--per-page", "500")["items"]
    assert job_id not in [item["id"] for item in before]  # created within the hour
    window = as_json(server, "jobs", "--since", "1h", "--until", future, "--per-page", "500")
    assert job_id in [item["id"] for item in window["items"]]
    assert "--until 'later'" in error_line(jobyard(server, "jobs", "--until", "later"), 2)


def test_show_has_resources_and_samples_with_sparklines(server: Server) -> None:
    job_id = as_json(server, "submit", "py-count", "n=1", "--hold")["id"]
    ok(server, "kill", str(job_id))
    assert as_json(server, "show", str(job_id))["samples"] == []  # never ran: no samples
    ran = as_json(server, "submit", "sleep", "seconds=2.5", "--wait")["id"]
    shown = as_json(server, "show", str(ran))
    assert len(shown["samples"]) >= 2
    assert all(s["rss"] > 0 for s in shown["samples"])
    assert shown["resources"]["runtime_seconds"] >= 2.5
    panel = [line.strip(" │") for line in ok(server, "show", str(ran)).splitlines()]
    [start] = [i for i, line in enumerate(panel) if line.startswith("samples ")]
    assert panel[start].split() == ["samples", "attempt", "1,", str(len(shown["samples"])), "taken"]
    cpu, rss = panel[start + 1], panel[start + 2]
    assert cpu.startswith("CPU ")
    assert set("▁▂▃▄▅▆▇█") & set(cpu)
    assert rss.startswith("RSS ")
    assert set("▁▂▃▄▅▆▇█") & set(rss)
    assert rss.endswith(" MB")
    res = shown["resources"]  # the figures as the UI and notifications write them
    rows = dict(
        line.split(maxsplit=1) for line in panel if line.split()[:1] in (["cpu"], ["output"])
    )
    assert rows["cpu"] == duration(res["cpu_seconds"])  # "31 ms", not "0.0s"
    assert rows["output"] == f"{size(res['output_bytes'])} in {res['log_lines']} lines"
    [peak] = [line for line in panel if line.startswith("peak memory ")]
    assert peak.split(maxsplit=2)[2] == size(res["peak_memory_bytes"])


def test_workers_show_one_by_name(server: Server) -> None:
    name = as_json(server, "workers")["items"][0]["name"]
    shown = as_json(server, "workers", name)
    again = as_json(server, "workers", "show", name)
    assert {**again, "heartbeat_at": None} == {**shown, "heartbeat_at": None}  # it beats on
    assert (shown["name"], shown["state"]) == (name, "running")
    panel = ok(server, "workers", "show", name)
    assert f"worker {name}" in panel
    assert "heartbeat" in panel
    assert name in ok(server, "workers", "list")
    assert as_json(server, "workers", "list")["total"] >= 1
    missing = error_line(jobyard(server, "workers", "show", "nope"), 3)
    assert missing == "jobyard: error: no worker named 'nope'"


def test_workflows_show_one_by_name(server: Server) -> None:
    listed = {item["name"]: item for item in as_json(server, "workflows")["items"]}
    assert as_json(server, "workflows", "broken") == listed["broken"]
    assert as_json(server, "workflows", "show", "broken")["args"] == {"code": 5}
    lines = ok(server, "workflows", "broken").splitlines()
    assert lines[0].startswith("broken: A node that fails")
    assert '  args {"code": 5}' in lines
    assert "  bad (fail)  after first" in lines
    assert '  first (echo)  {"text": "first"}' in lines
    assert "diamond: A diamond and a chain" in ok(server, "workflows", "list")
    missing = error_line(jobyard(server, "workflows", "nope"), 3)
    assert missing == "jobyard: error: no workflow named 'nope'"


def test_notifications_of_one_run(server: Server) -> None:
    run = json.loads(jobyard(server, "run", "broken", "--wait", "--json").stdout)

    def told() -> list[dict[str, object]] | None:
        items = as_json(server, "notifications", "--run", str(run["id"]))["items"]
        return items if any(item["event"] == "workflow_failed" for item in items) else None

    items = wait_for(told, what=f"the notifications of run {run['id']}")
    assert {item["run_id"] for item in items} == {run["id"]}
    failed = jobyard(server, "submit", "fail", "--wait", "--json")  # no run: not listed
    other = json.loads(failed.stdout)["id"]
    wait_for(lambda: as_json(server, "notifications", "--job", str(other))["items"])
    again = as_json(server, "notifications", "--run", str(run["id"]), "--per-page", "500")
    assert other not in {item["job_id"] for item in again["items"]}
    assert "workflow_failed" in ok(server, "notifications", "--run", str(run["id"]))


def test_notification_channels(server: Server, launch: Launcher, tmp_path: Path) -> None:
    assert as_json(server, "notifications", "channels") == {
        "public_url": None,
        "retry": {"max_attempts": 5, "initial": 10.0, "max_delay": 600.0},
        "channels": {},
        "rules": [],
    }
    assert "0 channels" in ok(server, "notifications", "channels")
    config = tmp_path / "jobyard.yaml"
    config.write_text(
        "notifications:\n  channels:\n"
        f"    ops-mail: {{type: email, host: 127.0.0.1, port: {free_port()}, security: none,"
        " sender: jobyard@example.test, to: [ops@example.test]}\n"
        f"    hook: {{type: webhook, url: 'http://127.0.0.1:{free_port()}/hook',"
        " retry: {max_attempts: 2}}\n"
        "  rules:\n"
        "    - {events: [failed, sla_breach], channels: [ops-mail, hook]}\n"
        "    - {events: [failed], job_types: [echo], channels: [ops-mail], to: [a@example.test]}\n"
    )
    told = launch(f"sqlite:///{tmp_path / 'jobs.db'}", config=config)
    section = as_json(told, "notifications", "channels")
    assert set(section["channels"]) == {"ops-mail", "hook"}
    assert section["channels"]["hook"]["retry"]["max_attempts"] == 2
    assert [rule["job_types"] for rule in section["rules"]] == [None, ["echo"]]
    table = ok(told, "notifications", "channels")
    assert "ops@example.test via 127.0.0.1:" in table
    assert "2 tries, 10.0 s apart, doubling up to 10 min 00 s" in table
    assert "type echo" in table
    assert "a@example.test" in table
    captions = [line.strip() for line in table.splitlines() if line.strip().endswith("s")]
    assert captions[-2:] == ["2 channels", "2 rules"]


def test_health(server: Server) -> None:
    said = ok(server, "health")
    assert said.startswith("ok: jobyard ")
    assert " on sqlite; worker " in said
    assert as_json(server, "health")["status"] == "ok"
    away = error_line(jobyard(server, "health", "--server", f"127.0.0.1:{free_port()}"), 5)
    assert "cannot reach" in away
