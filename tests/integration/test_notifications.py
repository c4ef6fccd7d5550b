"""Notifications end to end: a real server, a real SMTP server and a real webhook receiver.

A failing job sends one email and one signed webhook; budgets (SLA) are reported
while the job still runs, and kill it with ``on_breach: kill``; a receiver that
fails twice gets the message on the third try; a dead channel ends ``failed``
with its reason, and the job is untouched. Secrets never leave the server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobyard.notify.send import verify_signature
from tests.harness import Server, free_port, read_sse, wait_for
from tests.receivers import HookReceiver, Mailbox, hook_server, smtp_server

SECRET = "s3cret-hook-key-do-not-leak"
# Chat webhooks carry their secret in the URL's path; others in its query.
URL_SECRETS = ("s3cret-path-do-not-leak", "s3cret-query-do-not-leak")
PASSWORD = "smtp-password-do-not-leak"

CONFIG = """
job_types:
  fails:
    command: [sh, -c, 'for i in $(seq 1 30); do echo "line $i"; done; exit 3']
  fine:
    command: ["true"]
  over-time:
    command: [sleep, "60"]
    sla: {{max_runtime: 1s}}
  over-time-kill:
    command: [sleep, "60"]
    sla: {{max_runtime: 1s, on_breach: kill}}
  over-time-kill-retried:
    command: [sleep, "60"]
    retries: {{max: 1, backoff: fixed, initial: 0.1s}}
    sla: {{max_runtime: 1s, on_breach: kill}}
  too-many-rows:
    command: [sh, -c, 'echo "##jobyard metric rows 500"; exec sleep 60']
    sla: {{max_data: {{metric: rows, limit: 100}}, on_breach: kill}}
  rows-at-the-end:
    command: [sh, -c, 'echo "wrote them"; echo "##jobyard metric rows 5000"']
    sla: {{max_data: {{metric: rows, limit: 1000}}, on_breach: kill}}
  hooked:
    command: [sh, -c, 'exit 1']
  unlucky:
    command: [sh, -c, 'exit 2']
notifications:
  public_url: http://jobs.example.test
  retry: {{max_attempts: 3, initial: 0.2s, max_delay: 1s}}
  channels:
    mail:
      type: email
      host: 127.0.0.1
      port: {smtp_port}
      security: none
      sender: jobyard@example.test
      to: [ops@example.test]
      timeout: 5s
    hook:
      type: webhook
      url: {hook_url}
      secret_env: HOOK_SECRET
      timeout: 5s
    dead-mail:
      type: email
      host: 127.0.0.1
      port: {dead_port}
      security: none
      user: jobyard
      password_env: SMTP_PASSWORD
      sender: jobyard@example.test
      to: [nobody@example.test]
      timeout: 2s
      retry: {{max_attempts: 2, initial: 0.1s}}
  rules:
    - events: [failed, sla_breach]
      job_types:
        - fails
        - over-time
        - over-time-kill
        - over-time-kill-retried
        - too-many-rows
        - rows-at-the-end
      channels: [mail, hook]
      to: [data@example.test]
    - events: [failed]
      job_types: [hooked]
      channels: [hook]
    - events: [failed]
      job_types: [unlucky]
      channels: [dead-mail]
"""


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as served:
        yield served


@pytest.fixture(scope="module")
def hooks() -> Iterator[HookReceiver]:
    with hook_server() as receiver:
        yield receiver


def start_server(
    database_url: str, workdir: Path, mailbox: tuple[Mailbox, int], hooks: HookReceiver
) -> Server:
    config = workdir / "jobyard.yaml"
    hook_url = f"{hooks.url}/{URL_SECRETS[0]}?key={URL_SECRETS[1]}"
    text = CONFIG.format(smtp_port=mailbox[1], hook_url=hook_url, dead_port=free_port())
    config.write_text(text)
    env = {"HOOK_SECRET": SECRET, "SMTP_PASSWORD": PASSWORD}
    args = ["--log-format", "json"]
    return Server(database_url, workdir, config=config, args=args, env=env).start()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    mailbox: tuple[Mailbox, int],
    hooks: HookReceiver,
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("notifications")
    server = start_server(f"sqlite:///{workdir / 'jobs.db'}", workdir, mailbox, hooks)
    yield server
    server.stop()


def submit(server: Server, job_type: str) -> int:
    response = server.client.post("/api/v1/jobs", json={"type": job_type})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def notes(server: Server, job_id: int, **query: Any) -> list[dict[str, Any]]:
    response = server.client.get("/api/v1/notifications", params={"job": job_id, **query})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def settled(server: Server, job_id: int, count: int) -> list[dict[str, Any]]:
    """The job's ``count`` notifications once none is pending any more."""

    def probe() -> list[dict[str, Any]] | None:
        found = notes(server, job_id)
        done = len(found) == count and all(n["status"] != "pending" for n in found)
        return found if done else None

    return wait_for(probe, what=f"{count} delivered notifications of job {job_id}")


def mails_for(mailbox: Mailbox, job_id: int) -> list[Any]:
    return [m for m in mailbox.messages if f"job {job_id} " in str(m["Subject"])]


def hooks_for(hooks: HookReceiver, job_id: int) -> list[dict[str, Any]]:
    bodies = [json.loads(hook.body) for hook in hooks.accepted()]
    return [body for body in bodies if (body.get("job") or {}).get("id") == job_id]


def test_a_failing_job_sends_one_email_and_one_signed_webhook(
    server: Server, mailbox: tuple[Mailbox, int], hooks: HookReceiver
) -> None:
    job_id = submit(server, "fails")
    server.wait_state(job_id, "failed")
    sent = settled(server, job_id, 2)
    assert {(n["channel"], n["status"], n["attempts"]) for n in sent} == {
        ("mail", "sent", 1),
        ("hook", "sent", 1),
    }
    mail = wait_for(lambda: mails_for(mailbox[0], job_id), what="the email")
    assert len(mail) == 1
    text = mail[0].get_content()
    assert "exit code 3" in str(mail[0]["Subject"])
    assert "fails" in str(mail[0]["Subject"])
    assert f"http://jobs.example.test/jobs/{job_id}" in text
    assert "line 30" in text
    assert "line 11" in text
    assert "line 10\n" not in text
    assert mailbox[0].recipients[-1] == ["data@example.test"]  # the rule's recipients
    [request] = [
        h for h in hooks.accepted() if json.loads(h.body).get("job", {}).get("id") == job_id
    ]
    assert verify_signature(SECRET, request.body, request.headers["X-Jobyard-Signature"])
    assert not verify_signature("wrong", request.body, request.headers["X-Jobyard-Signature"])
    body = json.loads(request.body)
    assert body["event"] == "failed"
    assert body["job"]["exit_code"] == 3


def test_a_failed_job_removed_at_once_is_told_all_the_same(
    server: Server, mailbox: tuple[Mailbox, int]
) -> None:
    """Its events went with it, before the notifier (twice a second) read its end: an
    operator's removal kept the failure from anyone (no message, not even recorded)."""
    job_id = submit(server, "fails")
    server.wait_state(job_id, "failed")
    assert server.client.delete(f"/api/v1/jobs/{job_id}").status_code == 204
    sent = settled(server, job_id, 2)
    assert {(n["channel"], n["status"], n["event"]) for n in sent} == {
        ("mail", "sent", "failed"),
        ("hook", "sent", "failed"),
    }
    [mail] = wait_for(lambda: mails_for(mailbox[0], job_id), what="the email")
    assert "exit code 3" in str(mail["Subject"])


def test_a_job_past_max_runtime_is_reported_while_it_still_runs(
    server: Server, mailbox: tuple[Mailbox, int], hooks: HookReceiver
) -> None:
    job_id = submit(server, "over-time")
    sent = settled(server, job_id, 2)
    assert {n["event"] for n in sent} == {"sla_breach"}
    assert server.job(job_id)["state"] == "running"  # told while it runs, not killed
    sla = sent[0]["data"]["sla"]
    assert sla["budget"] == "max_runtime"
    assert sla["limit"] == 1.0
    assert sla["value"] > 1.0
    assert len(hooks_for(hooks, job_id)) == 1
    server.client.post(f"/api/v1/jobs/{job_id}/kill")
    server.wait_state(job_id, "killed")
    assert len(notes(server, job_id)) == 2  # once per budget: no second breach, no "failed"


@pytest.mark.parametrize(
    ("job_type", "budget"), [("over-time-kill", "max_runtime"), ("too-many-rows", "max_data")]
)
def test_on_breach_kill_stops_the_job(
    server: Server, hooks: HookReceiver, job_type: str, budget: str
) -> None:
    job_id = submit(server, job_type)
    job = server.wait_state(job_id, "failed")
    assert job["reason"] == "sla_breach"
    assert job["resources"]["runtime_seconds"] < 30  # killed, not run to its end
    sent = settled(server, job_id, 4)  # sla_breach and failed, each to mail and hook
    assert sorted(n["event"] for n in sent) == ["failed", "failed", "sla_breach", "sla_breach"]
    breach = next(n for n in sent if n["event"] == "sla_breach")["data"]["sla"]
    assert breach["budget"] == budget
    assert breach["action"] == "kill"
    if budget == "max_data":
        assert breach["value"] == 500
        assert breach["limit"] == 100


def test_a_kill_budget_stops_every_attempt_and_is_told_once(server: Server) -> None:
    job_id = submit(server, "over-time-kill-retried")
    job = server.wait_state(job_id, "failed", "succeeded")
    # The retry was stopped too, not run to its end.
    assert (job["state"], job["reason"], job["attempt"]) == ("failed", "sla_breach", 2)
    assert job["resources"]["runtime_seconds"] < 30
    lines = server.client.get(f"/api/v1/jobs/{job_id}/logs").json()["items"]
    stops = [line for line in lines if line["line"].endswith("; stopping the job")]
    assert len(stops) == 2, lines
    sent = settled(server, job_id, 4)  # one sla_breach and one failed, to mail and hook
    assert sorted(n["event"] for n in sent) == ["failed", "failed", "sla_breach", "sla_breach"]


def test_data_reported_as_the_job_ends_is_checked_against_its_budget(
    server: Server, hooks: HookReceiver
) -> None:
    job_id = submit(server, "rows-at-the-end")
    job = server.wait_state(job_id, "succeeded", "failed")
    assert (job["state"], job["reason"]) == ("succeeded", None)  # over: nothing to kill
    sent = settled(server, job_id, 2)  # sla_breach, to mail and hook
    assert {(n["event"], n["status"]) for n in sent} == {("sla_breach", "sent")}
    breach = sent[0]["data"]["sla"]
    assert (breach["budget"], breach["value"], breach["limit"]) == ("max_data", 5000, 1000)
    assert breach["action"] == "notify"
    [hook] = hooks_for(hooks, job_id)
    assert hook["event"] == "sla_breach"
    with server.client.stream("GET", f"/api/v1/jobs/{job_id}/events", timeout=60) as response:
        events = [e for e in read_sse(response.iter_lines()) if e.event in ("sla", "state")]
    assert [e.event for e in events][-2:] == ["sla", "state"]  # recorded before the end
    assert events[-2].data["metric"] == "rows"


def test_a_receiver_that_fails_twice_gets_the_message_on_the_third_try(
    server: Server, hooks: HookReceiver
) -> None:
    hooks.statuses[:] = [500, 503]
    seen = len(hooks.requests)
    job_id = submit(server, "hooked")
    [note] = settled(server, job_id, 1)
    assert (note["status"], note["attempts"], note["last_error"]) == ("sent", 3, None)
    tries = hooks.requests[seen:]
    assert [hook.status for hook in tries] == [500, 503, 200]
    assert len({hook.headers["X-Jobyard-Delivery"] for hook in tries}) == 1  # one message
    assert server.job(job_id)["state"] == "failed"


def test_a_dead_channel_ends_failed_with_its_reason_and_leaves_the_job_alone(
    server: Server,
) -> None:
    job_id = submit(server, "unlucky")
    [note] = settled(server, job_id, 1)
    assert note["status"] == "failed"
    assert note["attempts"] == 2
    assert "refused" in note["last_error"]
    job = server.job(job_id)
    assert (job["state"], job["exit_code"]) == ("failed", 2)
    params = {"job": job_id, "after": 0}
    with server.client.stream("GET", "/api/v1/events", params=params, timeout=60) as response:
        updates = [
            e.data
            for e in read_sse(
                response.iter_lines(),
                stop=lambda e: e.event == "notification" and e.data["status"] == "failed",
            )
            if e.event == "notification"
        ]
    assert [(u["status"], u["attempts"]) for u in updates] == [("pending", 1), ("failed", 2)]
    assert "refused" in updates[-1]["error"]
    assert (updates[-1]["channel"], updates[-1]["event"]) == ("dead-mail", "failed")


def test_the_server_logs_its_actions_as_json_lines(server: Server) -> None:
    entries = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    sent = [e for e in entries if e["message"] == "notification sent"]
    assert sent, "no 'notification sent' entry in the server's log"
    assert {"time", "level", "logger", "channel", "event", "notification_id"} <= set(sent[0])
    assert any(e["message"] == "SLA breach" and e["budget"] == "max_runtime" for e in entries)


def test_secrets_never_leave_the_server(server: Server) -> None:
    channels = server.client.get("/api/v1/notifications/channels")
    assert channels.status_code == 200
    assert {"mail", "hook", "dead-mail"} <= set(channels.json()["channels"])
    everything = [
        channels.text,
        server.client.get("/api/v1/notifications", params={"per_page": 500}).text,
        server.client.get("/api/v1/job-types").text,
        server.log(),
    ]
    for text in everything:
        for secret in (SECRET, PASSWORD, *URL_SECRETS):
            assert secret not in text


@pytest.mark.slow
def test_delivery_works_on_the_server_databases(
    database_url: str, tmp_path: Path, mailbox: tuple[Mailbox, int], hooks: HookReceiver
) -> None:
    server = start_server(database_url, tmp_path, mailbox, hooks)
    before = len(mailbox[0].messages)  # job ids repeat across databases: count new mail only
    try:
        job_id = submit(server, "fails")
        sent = settled(server, job_id, 2)
        assert {(n["channel"], n["status"]) for n in sent} == {("mail", "sent"), ("hook", "sent")}
        assert len(mailbox[0].messages) - before == 1
    finally:
        server.stop()


def test_nothing_is_sent_for_a_success_no_rule_asks_for(server: Server) -> None:
    job_id = submit(server, "fine")
    server.wait_state(job_id, "succeeded")
    marker = submit(server, "hooked")  # a later event: once it is told, the first was seen
    settled(server, marker, 1)
    assert notes(server, job_id) == []


def test_the_command_line_lists_notifications(server: Server) -> None:
    job_id = submit(server, "fails")  # a failure of its own to list: mail and hook are told
    server.wait_state(job_id, "failed")
    settled(server, job_id, 2)

    def jobyard(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "jobyard", "notifications", "--server", server.url]
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)

    listed = jobyard("--status", "sent,failed", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert found["total"] >= 1
    assert {item["status"] for item in found["items"]} <= {"sent", "failed"}
    table = jobyard("--event", "failed")
    assert table.returncode == 0, table.stderr
    assert "hook" in table.stdout
    bad = jobyard("--status", "lost")
    assert bad.returncode == 2
    assert "unknown status 'lost'" in bad.stderr
