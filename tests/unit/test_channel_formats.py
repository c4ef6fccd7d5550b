"""Webhook and AMQP bodies: JSON, Slack, Teams and templates; their problems fail the load."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from jobyard.config import ConfigError, load_config
from jobyard.notify.channels import AmqpChannel, WebhookChannel, parse_notifications
from jobyard.notify.formats import SAMPLES
from jobyard.notify.message import Message, render
from jobyard.notify.send import DeliveryError

FAILED = render(SAMPLES[0], delivery_id="dlv-1")
WORKFLOW = render(SAMPLES[1], delivery_id="dlv-2")
SLA: Message = render(
    {
        "event": "sla_breach",
        "job": {"id": 5, "type": "etl", "state": "running", "name": "a <b> & c"},
        "sla": {"budget": "max_runtime", "limit": 60.0, "value": 75.0, "action": "kill"},
    },
    delivery_id="dlv-3",
)


def load(tmp_path: Path, channels: str, extra: str = "") -> Any:
    """The notifications of a file with these ``channels`` (YAML, indented by 4)."""
    path = tmp_path / "jobyard.yaml"
    listed = textwrap.indent(textwrap.dedent(channels).lstrip(), "    ")
    text = f"notifications:\n{extra}  channels:\n{listed}"
    path.write_text(text)
    return load_config(path, {}).notifications


def problems(tmp_path: Path, channels: str, extra: str = "") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, channels, extra)
    prefix = f"{tmp_path / 'jobyard.yaml'}:"
    return [line.removeprefix(prefix) for line in str(info.value).splitlines()]


def hook(**options: Any) -> WebhookChannel:
    config = parse_notifications(
        {"channels": {"c": {"type": "webhook", "url": "http://h/x", **options}}}
    )
    channel = config.channels["c"]
    assert isinstance(channel, WebhookChannel)
    return channel


def body(channel: WebhookChannel | AmqpChannel, message: Message = FAILED) -> Any:
    data, content_type = channel.body(message)
    assert content_type == "application/json"
    return json.loads(data)


# -- json, slack, teams -----------------------------------------------------------------
def test_json_is_the_default_and_the_same_body_as_before() -> None:
    assert hook().body(FAILED) == (FAILED.body(), "application/json")


def test_slack_has_text_and_blocks_with_job_state_and_link() -> None:
    sent = body(hook(format="slack"))
    assert sent["text"] == "job 42 (etl) failed: exit code 3"
    kinds = [block["type"] for block in sent["blocks"]]
    assert kinds == ["section", "section", "section", "actions", "context"]
    fields = {
        f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in sent["blocks"][1]["fields"]
    }
    assert fields["*Job*"] == "<https://jobs.example.com/jobs/42|42>"
    assert fields["*State*"] == "failed"
    assert fields["*Exit code*"] == "3"
    assert "boom" in sent["blocks"][2]["text"]["text"]
    assert sent["blocks"][3]["elements"][0]["url"] == "https://jobs.example.com/jobs/42"


def test_slack_escapes_mrkdwn_and_tells_a_kill() -> None:
    sent = body(hook(format="slack"), SLA)
    texts = json.dumps(sent["blocks"])
    assert "a &lt;b&gt; &amp; c" in texts
    assert "the job is killed" in texts
    assert sent["text"].startswith("job 5 (etl) breached its SLA: max_runtime")


def test_slack_keeps_a_jobs_backticks_inside_its_code_blocks() -> None:
    """Three backticks in the output ended the block: the rest was Slack's markup."""
    notice = {
        "event": "failed",
        "job": {"id": 6, "type": "etl", "state": "failed", "error": "bad ```*bold*``` `x`"},
        "log_tail": ["```", "*not bold*", "`"],
    }
    sent = body(hook(format="slack"), render(notice, delivery_id="dlv-4"))
    blocks = [b["text"]["text"] for b in sent["blocks"] if b.get("text")]
    [error] = [text for text in blocks if text.startswith("*Error*")]
    [tail] = [text for text in blocks if text.startswith("*Last log lines*")]
    for text in (error, tail):
        inside = text.split("\n", 1)[1]
        assert inside.startswith("```")
        assert inside.endswith("```")
        assert "``" not in inside[3:-3]  # no fence within
        assert "````" not in inside  # nor one against the block's own
        assert inside[3:-3].replace("\u2060", "") in ("bad ```*bold*``` `x`", "```\n*not bold*\n`")


def test_slack_for_a_workflow_run_names_the_failed_nodes() -> None:
    sent = body(hook(format="slack"), WORKFLOW)
    fields = [f["text"] for f in sent["blocks"][1]["fields"]]
    assert "*Failed nodes*\nextract" in fields
    assert "*Workflow*\nnightly run 7" in fields


def test_teams_is_an_adaptive_card_in_a_message() -> None:
    sent = body(hook(format="teams"))
    assert sent["type"] == "message"
    [attachment] = sent["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == "job 42 (etl) failed: exit code 3"
    facts = {fact["title"]: fact["value"] for fact in card["body"][1]["facts"]}
    assert facts["State"] == "failed"
    assert facts["Exit code"] == "3"
    assert all(isinstance(value, str) for value in facts.values())
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open in jobyard",
            "url": "https://jobs.example.com/jobs/42",
        }
    ]
    assert "actions" not in body(hook(format="teams"), WORKFLOW)["attachments"][0]["content"]


# -- templates ----------------------------------------------------------------------------
def test_an_inline_template_with_its_content_type() -> None:
    channel = hook(
        template="{{ summary }} ({{ job.runtime | duration }})", content_type="text/plain"
    )
    assert channel.format == "template"  # implied by the template
    assert channel.body(FAILED) == (b"job 42 (etl) failed: exit code 3 (1 min 35 s)", "text/plain")


def test_a_template_file_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "ops.json.j2").write_text(
        '{"msg": {{ subject | tojson }}, "id": {{ delivery | tojson }}}'
    )
    config = load(tmp_path, "ops: {type: webhook, url: 'http://h/x', template_file: ops.json.j2}\n")
    assert body(config.channels["ops"]) == {
        "msg": "[jobyard] job 42 (etl) failed: exit code 3",
        "id": "dlv-1",
    }


def test_a_templates_directory_overrides_the_shipped_slack_template(tmp_path: Path) -> None:
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "slack.json.j2").write_text(
        '{"text": {{ ("custom: " ~ summary) | tojson }}}'
    )
    config = load(
        tmp_path,
        "chat: {type: webhook, url: 'http://h/x', format: slack}\n"
        "teams: {type: webhook, url: 'http://h/y', format: teams}\n",
        extra="  templates: tpl\n",
    )
    assert body(config.channels["chat"]) == {"text": "custom: job 42 (etl) failed: exit code 3"}
    assert body(config.channels["teams"])["type"] == "message"  # no file of its name: shipped


def test_a_template_that_fails_at_send_is_a_failed_delivery() -> None:
    channel = WebhookChannel(
        url="http://h/x", template="{{ job.id // 0 }}", content_type="text/plain"
    )
    with pytest.raises(DeliveryError) as info:
        channel.body(FAILED)
    assert (
        info.value.reason
        == "template failed: ZeroDivisionError: integer division or modulo by zero"
    )


# -- problems at load -----------------------------------------------------------------------
def test_template_problems_fail_the_load_with_field_and_file(tmp_path: Path) -> None:
    (tmp_path / "broken.j2").write_text('{"a": {{ summary | tojson }\n')
    (tmp_path / "notjson.j2").write_text("{{ summary }}\n")
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "teams.json.j2").write_text("{% if %}")
    found = problems(
        tmp_path,
        """
        a: {type: webhook, url: 'http://h/x', format: markdown}
        b: {type: webhook, url: 'http://h/x', template: '{{ summary'}
        c: {type: webhook, url: 'http://h/x', template_file: missing.j2}
        d: {type: webhook, url: 'http://h/x', template_file: broken.j2}
        e: {type: webhook, url: 'http://h/x', template_file: notjson.j2}
        f: {type: webhook, url: 'http://h/x', format: slack, template: '{{ summary }}'}
        g: {type: webhook, url: 'http://h/x', format: template}
        h: {type: webhook, url: 'http://h/x', format: teams}
        i: {type: webhook, url: 'http://h/x', template: x, content_type: 'not a type'}
        """,
        extra="  templates: tpl\n",
    )
    assert found[0] == (
        "4: notifications.channels.a.format: Input should be 'json', 'slack', 'teams' or 'template'"
    )
    assert found[1].startswith(
        "5: notifications.channels.b.template: template syntax error on line 1: "
    )
    assert (
        found[2]
        == f"6: notifications.channels.c.template_file: no such file: {tmp_path / 'missing.j2'}"
    )
    assert found[3].startswith(
        "7: notifications.channels.d.template_file: template syntax error on line 1: "
    )
    assert found[3].endswith(f"(in {tmp_path / 'broken.j2'})")
    assert found[4].startswith(
        "8: notifications.channels.e.template_file: the template did not make JSON: "
    )
    assert (
        found[5]
        == "9: notifications.channels.f.template: a template goes with format: template, not slack"
    )
    assert (
        found[6]
        == "10: notifications.channels.g.template: format: template takes template or template_file"
    )
    assert found[7].startswith("11: notifications.channels.h.format: template syntax error")
    assert found[7].endswith(f"(in {tmp_path / 'tpl' / 'teams.json.j2'})")
    assert found[8].startswith("12: notifications.channels.i.content_type: not a media type")
    assert len(found) == 9


def test_a_missing_templates_directory(tmp_path: Path) -> None:
    found = problems(
        tmp_path, "a: {type: webhook, url: 'http://h/x'}\n", extra="  templates: nowhere\n"
    )
    assert found == [f"2: notifications.templates: no such directory: {tmp_path / 'nowhere'}"]


def test_amqp_problems(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        a: {type: amqp, url: 'http://h/', exchange: x}
        b: {type: amqp, url: 'amqp://u:p@h/', exchange: x}
        c: {type: amqp, url: 'amqp://h/', exchange: x, user: jobs}
        d: {type: amqp, url: 'amqp://h/', exchange: '', exchange_type: topic}
        e: {type: amqp, url: 'amqp://h/', exchange: x, routing_key: '{{ event'}
        f: {type: amqp, url: 'amqp://h/'}
        """,
    )
    assert found == [
        "3: notifications.channels.a.url: not an amqp(s) URL: 'http://h/'",
        "4: notifications.channels.b.url: "
        "no credentials in the URL: give user and password_env instead",
        "5: notifications.channels.c.user: give user and password_env together",
        "6: notifications.channels.d.exchange_type: the default exchange ('') is not declared",
        found[4],
        "8: notifications.channels.f.exchange: is required",
    ]
    assert found[4].startswith(
        "7: notifications.channels.e.routing_key: template syntax error on line 1"
    )


# -- AMQP routing keys ---------------------------------------------------------------------
def test_routing_keys_from_job_type_and_state() -> None:
    channel = AmqpChannel(
        url="amqp://h/", exchange="x", routing_key="jobs.{{ job.type }}.{{ job.state }}"
    )
    assert channel.routing_key_for(FAILED) == "jobs.etl.failed"
    assert channel.routing_key_for(WORKFLOW) == "jobs.."  # no job: empty, never an error
    assert (
        AmqpChannel(url="amqp://h/", exchange="x").routing_key_for(WORKFLOW)
        == "jobyard.workflow_failed"
    )
    too_long = AmqpChannel(url="amqp://h/", exchange="x", routing_key="{{ 'k' * 300 }}")
    with pytest.raises(DeliveryError, match="longer than 255 bytes"):
        too_long.routing_key_for(FAILED)


def test_amqp_shows_no_secret() -> None:
    channel = AmqpChannel(url="amqp://h/", exchange="x", user="jobs", password_env="MQ_PASSWORD")
    assert channel.public_dict()["password"] == "set"
    assert "MQ_PASSWORD" not in json.dumps(channel.public_dict())


# -- the documentation's examples ------------------------------------------------------------
DOC = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"


def doc_blocks(language: str) -> list[str]:
    parts = DOC.read_text().split(f"```{language}\n")[1:]
    return [part.split("```", 1)[0] for part in parts]


def test_the_documented_configurations_load(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    [pager] = doc_blocks("jinja")
    (tmp_path / "templates" / "pager.txt.j2").write_text(pager)
    [oncall] = doc_blocks("html+jinja")
    (tmp_path / "templates" / "oncall.html.j2").write_text(oncall)
    env = {"SMTP_PASSWORD": "x", "HOOK_SECRET": "y", "AMQP_PASSWORD": "z"}
    examples = [block for block in doc_blocks("yaml") if block.startswith("notifications:")]
    assert len(examples) == 5
    # Each is a part of a file: the one its rules narrow to (workflow "nightly") is there too.
    rest = "job_types: {etl: {command: [echo]}}\nworkflows: {nightly: {nodes: {a: {type: etl}}}}\n"
    for block in examples:
        (tmp_path / "jobyard.yaml").write_text(rest + block)
        assert load_config(tmp_path / "jobyard.yaml", env).notifications.channels


def test_the_documented_pager_line(tmp_path: Path) -> None:
    [pager] = doc_blocks("jinja")
    channel = WebhookChannel(url="http://h/x", template=pager, content_type="text/plain")
    line = "FAILED etl#42 exit=3 after 1 min 35 s https://jobs.example.com/jobs/42\n"
    assert channel.body(FAILED)[0].decode() == line
    assert f"sends `{line.strip()}`" in DOC.read_text()
