"""The email's subject and body come from templates a `templates:` directory or the channel
overrides; a template that cannot render fails the load with its file and field."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from jobyard.config import ConfigError, load_config
from jobyard.notify import mail
from jobyard.notify.channels import EmailChannel
from jobyard.notify.formats import SAMPLES
from jobyard.notify.message import render
from jobyard.notify.send import DeliveryError

FAILED = render(SAMPLES[0], delivery_id="dlv-1", to=["ops@example.com"])
WORKFLOW = render(SAMPLES[1], delivery_id="dlv-2", to=["ops@example.com"])
MAIL = "mail: {type: email, host: smtp.example.com, sender: j@example.com, to: [o@example.com]"


def write(tmp_path: Path, channel_keys: str = "", templates: dict[str, str] | None = None) -> Path:
    """A jobyard.yaml with one email channel (plus ``channel_keys``) and, given
    ``templates``, a `templates:` directory holding those files."""
    head = ""
    if templates is not None:
        (tmp_path / "tpl").mkdir()
        for name, text in templates.items():
            (tmp_path / "tpl" / name).write_text(textwrap.dedent(text))
        head = "  templates: tpl\n"
    path = tmp_path / "jobyard.yaml"
    path.write_text(f"notifications:\n{head}  channels:\n    {MAIL}{channel_keys}}}\n")
    return path


def channel(path: Path) -> EmailChannel:
    found = load_config(path, {}).notifications.channels["mail"]
    assert isinstance(found, EmailChannel)
    return found


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    return [line.removeprefix(f"{path}:") for line in str(info.value).splitlines()]


def test_without_templates_the_mail_is_the_message_as_always(tmp_path: Path) -> None:
    parts = channel(write(tmp_path)).parts(FAILED)
    assert parts == mail.MailParts(FAILED.subject, FAILED.text, None)
    assert parts.subject == "[jobyard] job 42 (etl) failed: exit code 3"
    assert parts.text.startswith("Job 42 (etl) failed: exit code 3.\n\nJob:       42\n")


def test_the_directory_replaces_the_subject_and_text_by_file_name(tmp_path: Path) -> None:
    templates = {
        "email.subject.j2": "ALERT {{ job.type or run.workflow }}: {{ event }}\n",
        "email.txt.j2": "{{ subject }}\n{{ job.runtime | duration }} {{ link }}\n",
    }
    mailer = channel(write(tmp_path, templates=templates))
    assert mailer.parts(FAILED) == mail.MailParts(
        "ALERT etl: failed", "ALERT etl: failed\n1 min 35 s https://jobs.example.com/jobs/42\n"
    )
    assert mailer.parts(WORKFLOW).subject == "ALERT nightly: workflow_failed"


def test_a_directory_with_only_a_subject_keeps_the_shipped_text(tmp_path: Path) -> None:
    mailer = channel(write(tmp_path, templates={"email.subject.j2": "{{ summary | upper }}"}))
    parts = mailer.parts(FAILED)
    assert parts.subject == "JOB 42 (ETL) FAILED: EXIT CODE 3"
    assert parts.text == FAILED.text


def test_a_subject_template_is_made_one_short_line(tmp_path: Path) -> None:
    keys = (
        ", subject_template: '{{ summary }}\n\n{% for i in range(99) %}{{ job.id }} {% endfor %}'"
    )
    subject = channel(write(tmp_path, keys)).parts(FAILED).subject
    assert subject.startswith("job 42 (etl) failed: exit code 3 42 42")
    assert "\n" not in subject
    assert len(subject) == mail.MAX_SUBJECT


def test_the_channels_own_templates_win_over_the_directory(tmp_path: Path) -> None:
    (tmp_path / "ops.txt.j2").write_text("Ops: {{ summary }}\n")
    (tmp_path / "ops.html.j2").write_text("<p>{{ job.name }}</p>")
    keys = (
        ", subject_template: 'ops {{ job.id }}', body_template_file: ops.txt.j2"
        ", html_template_file: ops.html.j2"
    )
    path = write(tmp_path, keys, templates={"email.subject.j2": "from the directory"})
    sla = render(SAMPLES[2], delivery_id="dlv-3")
    assert channel(path).parts(sla) == mail.MailParts(
        "ops 43",
        "Ops: job 43 (etl) breached its SLA: max_output 610.0 MB > 500.0 MB\n",
        "<p>export &lt;all&gt; &amp; more</p>",  # the HTML template escapes what it inserts
    )


def test_a_directory_html_template_adds_an_html_part(tmp_path: Path) -> None:
    html = "<h1>{{ subject }}</h1><pre>{{ log_tail | join('\\n') }}</pre>"
    parts = channel(write(tmp_path, templates={"email.html.j2": html})).parts(FAILED)
    assert parts.text == FAILED.text
    assert parts.html == (
        "<h1>[jobyard] job 42 (etl) failed: exit code 3</h1><pre>starting\nboom</pre>"
    )


@pytest.mark.parametrize(
    ("templates", "keys", "expected"),
    [
        (
            {"email.txt.j2": "Hello\n{{ job.id }\n"},
            "",
            "2: notifications.templates: text: template syntax error on line 2: unexpected '}'"
            " (in {tpl}/email.txt.j2)",
        ),
        (
            {"email.subject.j2": "{{ job.id + 'x' }}"},
            "",
            "2: notifications.templates: subject: template failed: TypeError: unsupported"
            " operand type(s) for +: 'int' and 'str' (in {tpl}/email.subject.j2)",
        ),
        (
            None,
            ", subject_template: '{% if %}'",
            "3: notifications.channels.mail.subject_template: subject: template syntax error"
            " on line 1: Expected an expression, got 'end of statement block'",
        ),
        (
            None,
            ", body_template_file: missing.j2",
            "3: notifications.channels.mail.body_template_file: no such file: {dir}/missing.j2",
        ),
        (
            None,
            ", body_template: x, body_template_file: y.j2",
            "3: notifications.channels.mail.body_template: give body_template or"
            " body_template_file",
        ),
    ],
)
def test_a_bad_template_fails_the_load_with_its_file_and_field(
    tmp_path: Path, templates: dict[str, str] | None, keys: str, expected: str
) -> None:
    path = write(tmp_path, keys, templates=templates)
    wanted = expected.replace("{tpl}", str(tmp_path / "tpl")).replace("{dir}", str(tmp_path))
    assert problems(path) == [wanted]


def test_an_html_file_that_fails_names_its_field_and_file(tmp_path: Path) -> None:
    (tmp_path / "bad.html.j2").write_text("<p>{{ job.id | no_such_filter }}</p>")
    lines = problems(write(tmp_path, ", html_template_file: bad.html.j2"))
    assert lines == [
        "3: notifications.channels.mail.html_template_file: html: template syntax error on"
        f" line 1: No filter named 'no_such_filter'. (in {tmp_path / 'bad.html.j2'})"
    ]


def test_a_template_that_fails_only_when_sent_fails_that_try(tmp_path: Path) -> None:
    keys = ", subject_template: \"{{ 1 // (job.exit_code - 7) if job.exit_code else 'x' }}\""
    mailer = channel(write(tmp_path, keys))  # the samples have exit code 3: it loads
    seven: Any = {**SAMPLES[0], "job": {**SAMPLES[0]["job"], "exit_code": 7}}
    with pytest.raises(DeliveryError) as info:
        mailer.parts(render(seven, delivery_id="d"))
    assert info.value.reason == (
        "subject: template failed: ZeroDivisionError: integer division or modulo by zero"
    )


# -- the documentation's example ---------------------------------------------------------------
DOC = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"


def test_the_documented_email_example_renders_as_described(tmp_path: Path) -> None:
    text = DOC.read_text()
    [html] = [part.split("```", 1)[0] for part in text.split("```html+jinja\n")[1:]]
    [config] = [
        part.split("```", 1)[0]
        for part in text.split("```yaml\n")[1:]
        if "oncall-mail" in part.split("```", 1)[0]
    ]
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "oncall.html.j2").write_text(html)
    (tmp_path / "jobyard.yaml").write_text(config)
    mailer = load_config(tmp_path / "jobyard.yaml", {}).notifications.channels["oncall-mail"]
    assert isinstance(mailer, EmailChannel)
    parts = mailer.parts(FAILED)
    assert "sends a failed job as the subject `FAILED etl 42`" in text
    assert parts.subject == "FAILED etl 42"
    assert parts.text == FAILED.text
    assert parts.html is not None
    assert "<p>Job 42 (etl), exit code 3, ran 1 min 35 s</p>" in parts.html
    assert '<a href="https://jobs.example.com/jobs/42">Open in jobyard</a>' in parts.html
    assert "<pre>starting\nboom</pre>" in parts.html
