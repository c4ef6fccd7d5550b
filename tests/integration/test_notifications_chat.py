"""A failing job told to chat and to a broker, end to end: a real server, a real HTTP
receiver standing in for Slack and Teams, a template of the user's, and the real RabbitMQ."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from jobyard.notify.send import verify_signature
from tests.broker import URL, connect, queue_on, take, unique
from tests.harness import Server, wait_for
from tests.receivers import Hook, HookReceiver, hook_server

SECRET = "chat-hook-secret"
CONFIG = """
job_types:
  nightly-export:
    command: [sh, -c, 'echo "exporting <rows> & more"; echo "disk full" >&2; exit 4']
  early:
    command: [sh, -c, 'exit 1']
notifications:
  public_url: http://jobs.example.test
  retry: {{max_attempts: 3, initial: 0.2s}}
  channels:
    slack:
      type: webhook
      url: {hook}?to=slack
      format: slack
    teams:
      type: webhook
      url: {hook}?to=teams
      format: teams
    pager:
      type: webhook
      url: {hook}?to=pager
      secret_env: HOOK_SECRET
      template_file: pager.txt.j2
      content_type: text/plain
    broker:
      type: amqp
      url: {amqp}
      exchange: {exchange}
      exchange_type: topic
      routing_key: "jobs.{{{{ job.type }}}}.{{{{ job.state }}}}"
    not-yet:
      type: amqp
      url: {amqp}
      exchange: {late_exchange}
      retry: {{max_attempts: 20, initial: 0.5s, max_delay: 1s}}
  rules:
    - events: [failed]
      job_types: [nightly-export]
      channels: [slack, teams, pager, broker]
    - events: [failed]
      job_types: [early]
      channels: [not-yet]
"""
LATE = unique("late")  # an exchange that does not exist yet when the server first sends
PAGER = "{{ event | upper }} {{ job.type }}#{{ job.id }} exit={{ job.exit_code }} {{ link }}\n"


@pytest.fixture(scope="module")
def hooks() -> Iterator[HookReceiver]:
    with hook_server() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def broker() -> Iterator[tuple[BlockingChannel, str, str]]:
    connection = connect()
    channel = connection.channel()
    exchange = unique("server")
    with queue_on(channel, exchange, "jobs.#") as queue:
        yield channel, exchange, queue
    connection.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    hooks: HookReceiver,
    broker: tuple[BlockingChannel, str, str],
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("chat")
    (workdir / "pager.txt.j2").write_text(PAGER)
    config = workdir / "jobyard.yaml"
    text = CONFIG.format(hook=hooks.url, amqp=URL, exchange=broker[1], late_exchange=LATE)
    config.write_text(text)
    database = f"sqlite:///{workdir / 'jobs.db'}"
    server = Server(database, workdir, config=config, env={"HOOK_SECRET": SECRET}).start()
    yield server
    server.stop()


def received(hooks: HookReceiver, to: str) -> Hook:
    """The one request the receiver accepted for channel ``to``, waited for."""

    def probe() -> list[Hook] | None:
        return [hook for hook in hooks.accepted() if hook.path.endswith(f"?to={to}")] or None

    [hook] = wait_for(probe, what=f"the {to} request")
    return hook


@pytest.fixture(scope="module")
def failed_job(server: Server) -> int:
    response = server.client.post("/api/v1/jobs", json={"type": "nightly-export"})
    assert response.status_code == 201, response.text
    job_id = int(response.json()["id"])
    server.wait_state(job_id, "failed")
    return job_id


def test_slack_gets_its_payload_shape(hooks: HookReceiver, failed_job: int) -> None:
    hook = received(hooks, "slack")
    assert hook.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = json.loads(hook.body)
    assert body["text"] == f"job {failed_job} (nightly-export) failed: exit code 4"
    link = f"http://jobs.example.test/jobs/{failed_job}"
    assert body["blocks"][-2] == {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open in jobyard"},
                "url": link,
            }
        ],
    }
    fields = [field["text"] for field in body["blocks"][1]["fields"]]
    assert f"*Job*\n<{link}|{failed_job}>" in fields
    assert "*State*\nfailed" in fields
    texts = [block["text"]["text"] for block in body["blocks"] if "text" in block]
    [log] = [text for text in texts if text.startswith("*Last log lines*")]
    assert "exporting &lt;rows&gt; &amp; more" in log  # escaped for mrkdwn
    assert "disk full" in log


def test_teams_gets_an_adaptive_card(hooks: HookReceiver, failed_job: int) -> None:
    body = json.loads(received(hooks, "teams").body)
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["body"][0]["text"] == f"job {failed_job} (nightly-export) failed: exit code 4"
    facts = {fact["title"]: fact["value"] for fact in card["body"][1]["facts"]}
    assert (facts["Type"], facts["State"], facts["Exit code"]) == ("nightly-export", "failed", "4")
    assert card["actions"][0]["url"] == f"http://jobs.example.test/jobs/{failed_job}"


def test_a_template_of_the_users_is_signed(hooks: HookReceiver, failed_job: int) -> None:
    hook = received(hooks, "pager")
    assert hook.headers["Content-Type"] == "text/plain"
    link = f"http://jobs.example.test/jobs/{failed_job}"
    assert hook.body.decode() == f"FAILED nightly-export#{failed_job} exit=4 {link}\n"
    assert verify_signature(SECRET, hook.body, hook.headers["X-Jobyard-Signature"])


def test_the_broker_gets_a_persistent_message_with_the_delivery_id(
    server: Server, broker: tuple[BlockingChannel, str, str], failed_job: int
) -> None:
    channel, _, queue = broker
    got = take(channel, queue)
    assert got.routing_key == "jobs.nightly-export.failed"
    assert got.properties.delivery_mode == pika.DeliveryMode.Persistent.value
    body = json.loads(got.body)
    assert (body["event"], body["job"]["id"], body["job"]["exit_code"]) == ("failed", failed_job, 4)
    assert got.properties.message_id == body["delivery"]
    sent = server.client.get("/api/v1/notifications", params={"job": failed_job}).json()["items"]
    by_channel = {note["channel"]: note for note in sent}
    assert str(by_channel["broker"]["id"]) == got.properties.message_id


def test_every_channel_reports_sent(server: Server, failed_job: int) -> None:
    def probe() -> dict[str, str] | None:
        items = server.client.get("/api/v1/notifications", params={"job": failed_job}).json()
        found = {note["channel"]: note["status"] for note in items["items"]}
        return found if len(found) == 4 and "pending" not in found.values() else None

    statuses = wait_for(probe, what="four delivered notifications")
    assert statuses == {"slack": "sent", "teams": "sent", "pager": "sent", "broker": "sent"}


def test_a_message_the_broker_did_not_take_is_sent_again_later(
    server: Server, broker: tuple[BlockingChannel, str, str]
) -> None:
    response = server.client.post("/api/v1/jobs", json={"type": "early"})
    job_id = int(response.json()["id"])

    def note(done: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        items = server.client.get("/api/v1/notifications", params={"job": job_id}).json()
        return next((dict(n) for n in items["items"] if done(n)), None)

    refused = wait_for(lambda: note(lambda n: n["attempts"] >= 1), what="a first try")
    assert refused["status"] == "pending"
    assert refused["last_error"].startswith(f"AMQP 404: NOT_FOUND - no exchange '{LATE}'")
    channel = broker[0]
    with queue_on(channel, LATE) as queue:
        got = take(channel, queue)
        sent = wait_for(lambda: note(lambda n: n["status"] == "sent"), what="the retry sent")
    assert got.properties.message_id == str(sent["id"])
    assert sent["attempts"] >= 2
