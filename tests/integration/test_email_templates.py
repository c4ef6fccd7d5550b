"""Email rendered from a `templates:` directory, as a real SMTP server (aiosmtpd) receives it."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from jobyard.config import load_config
from jobyard.notify.channels import EmailChannel
from jobyard.notify.formats import SAMPLES
from jobyard.notify.message import render
from tests.receivers import smtp_server


def body(part: EmailMessage) -> str:
    """The part's text with the line ends it had before SMTP made them CRLF."""
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


SUBJECT = "{{ event | upper }}: {{ job.type or run.workflow }} #{{ job.id or run.id }}\n"
TEXT = """\
{{ subject }}
{% if job %}
ran {{ job.runtime | duration }}, exit {{ job.exit_code }}
{% endif %}
{{ log_tail | join(" / ") }}
"""
HTML = "<p>{{ summary }}</p><p>{{ job.name }}</p>\n"


def mail_channel(tmp_path: Path, port: int, html: bool) -> EmailChannel:
    """The channel of a jobyard.yaml whose `templates:` directory replaces the subject and
    the text (and adds HTML), sending to ``port`` on this machine without TLS."""
    directory = tmp_path / "mail-templates"
    directory.mkdir()
    (directory / "email.subject.j2").write_text(SUBJECT)
    (directory / "email.txt.j2").write_text(TEXT)
    if html:
        (directory / "email.html.j2").write_text(HTML)
    config = tmp_path / "jobyard.yaml"
    config.write_text(
        "notifications:\n"
        "  templates: mail-templates\n"
        "  channels:\n"
        f"    mail: {{type: email, host: 127.0.0.1, port: {port}, security: none,"
        " sender: jobyard@example.com, to: [ops@example.com]}\n"
    )
    channel = load_config(config, {}).notifications.channels["mail"]
    assert isinstance(channel, EmailChannel)
    return channel


def test_the_directory_changes_the_subject_and_body_the_server_gets(tmp_path: Path) -> None:
    with smtp_server() as (mailbox, port):
        channel = mail_channel(tmp_path, port, html=False)
        channel.send(render(SAMPLES[0], delivery_id="d-1", to=["ops@example.com"]), environ={})
        channel.send(render(SAMPLES[1], delivery_id="d-2", to=["ops@example.com"]), environ={})
    first, second = mailbox.messages
    assert first["Subject"] == "FAILED: etl #42"
    assert first.get_content_type() == "text/plain"
    assert body(first) == "FAILED: etl #42\nran 1 min 35 s, exit 3\nstarting / boom\n"
    assert first["X-Jobyard-Delivery"] == "d-1"
    assert second["Subject"] == "WORKFLOW_FAILED: nightly #7"
    assert body(second) == "WORKFLOW_FAILED: nightly #7\n\n"


def test_an_html_template_sends_text_and_html_alternatives(tmp_path: Path) -> None:
    sla = render(SAMPLES[2], delivery_id="d-3", to=["ops@example.com"])
    with smtp_server() as (mailbox, port):
        mail_channel(tmp_path, port, html=True).send(sla, environ={})
    [received] = mailbox.messages
    assert isinstance(received, EmailMessage)
    assert received.get_content_type() == "multipart/alternative"
    text, html = received.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert body(text) == "SLA_BREACH: etl #43\nran , exit None\n\n"
    assert html.get_content_type() == "text/html"
    assert body(html) == (
        "<p>job 43 (etl) breached its SLA: max_output 610.0 MB &gt; 500.0 MB</p>"
        "<p>export &lt;all&gt; &amp; more</p>\n"
    )
