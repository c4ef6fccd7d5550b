"""Sending through real servers: an SMTP server (aiosmtpd) and a local HTTP receiver."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from jobyard import __version__
from jobyard.notify.channels import EmailChannel, WebhookChannel
from jobyard.notify.message import Message, Notice, render
from jobyard.notify.send import DeliveryError, verify_signature

PASSWORD = "pw-correct-horse"
SECRET = "hook-secret-value"
ENV = {"SMTP_PASSWORD": PASSWORD, "HOOK_SECRET": SECRET}
NOTICE: Notice = {
    "event": "failed",
    "job": {"id": 42, "type": "etl", "state": "failed", "exit_code": 3, "runtime": 95.0},
    "log_tail": ["starting", "boom"],
    "link": "https://jobs.example.com/jobs/42",
}


def message(to: tuple[str, ...] = ("ops@example.com", "dev@example.com")) -> Message:
    return render(NOTICE, delivery_id="dlv-7", to=to)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


# -- SMTP -----------------------------------------------------------------------------------
class Inbox:
    """An aiosmtpd handler that keeps what it accepts, or refuses with ``refuse``."""

    def __init__(self, refuse_data: str | None = None, refuse_rcpt: str | None = None) -> None:
        self.refuse_data = refuse_data
        self.refuse_rcpt = refuse_rcpt
        self.mails: list[tuple[Envelope, EmailMessage]] = []
        self.logins: list[bytes] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse_data:
            return self.refuse_data
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.mails.append((envelope, parsed))
        return "250 Message accepted"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        ok = data.login == b"jobyard" and data.password == PASSWORD.encode()
        if ok:
            self.logins.append(data.login)
        return AuthResult(success=ok, handled=False)  # not handled: the server answers 535


@contextmanager
def smtp_server(inbox: Inbox, **options: Any) -> Iterator[int]:
    controller = Controller(
        inbox, hostname="127.0.0.1", port=free_port(), server_hostname="localhost", **options
    )
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def mail_channel(port: int, **options: Any) -> EmailChannel:
    settings = {"security": "none", "timeout": 5, **options}
    return EmailChannel(host="127.0.0.1", port=port, sender="jobyard@example.com", **settings)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (skips without openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
            *("ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def test_mail_arrives_with_subject_recipients_and_body() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        mail_channel(port).send(message(), environ={})
    [(envelope, mail)] = inbox.mails
    assert envelope.mail_from == "jobyard@example.com"
    assert envelope.rcpt_tos == ["ops@example.com", "dev@example.com"]
    assert mail["Subject"] == "[jobyard] job 42 (etl) failed: exit code 3"
    assert mail["To"] == "ops@example.com, dev@example.com"
    assert mail["X-Jobyard-Delivery"] == "dlv-7"
    assert mail["X-Jobyard-Event"] == "failed"
    assert mail["Auto-Submitted"] == "auto-generated"
    body = mail.get_content()
    assert "Exit code: 3" in body
    assert "Runtime:   1 min 35 s" in body
    assert "  boom" in body
    assert "https://jobs.example.com/jobs/42" in body


def test_a_refused_message_names_the_code() -> None:
    inbox = Inbox(refuse_data="554 5.7.1 Message rejected as spam")
    with smtp_server(inbox) as port, pytest.raises(DeliveryError) as info:
        mail_channel(port).send(message(), environ={})
    assert info.value.reason == "SMTP 554 refused: 5.7.1 Message rejected as spam"


def test_refused_recipients_are_named() -> None:
    inbox = Inbox(refuse_rcpt="550 5.1.1 No such user")
    with smtp_server(inbox) as port, pytest.raises(DeliveryError) as info:
        mail_channel(port).send(message(("nobody@example.com",)), environ={})
    assert info.value.reason == "SMTP 550 refused nobody@example.com: 5.1.1 No such user"


def test_a_closed_port_is_connection_refused() -> None:
    port = free_port()
    with pytest.raises(DeliveryError) as info:
        mail_channel(port).send(message(), environ={})
    assert info.value.reason == f"connection refused by 127.0.0.1:{port}"


def test_a_silent_server_times_out() -> None:
    with silent_port() as port, pytest.raises(DeliveryError) as info:
        mail_channel(port, timeout=0.5).send(message(), environ={})
    assert info.value.reason == "timed out after 0.5 s"


def test_starttls_and_login(certificate: tuple[Path, Path]) -> None:
    inbox = Inbox()
    options = {"tls_context": server_tls(certificate), "require_starttls": True}
    with smtp_server(
        inbox, authenticator=inbox.authenticate, auth_required=True, **options
    ) as port:
        channel = mail_channel(
            port,
            security="starttls",
            ca_file=str(certificate[0]),
            user="jobyard",
            password_env="SMTP_PASSWORD",
        )
        channel.send(message(), environ=ENV)
        with pytest.raises(DeliveryError) as info:
            channel.send(message(), environ={"SMTP_PASSWORD": "wrong-password"})
    assert inbox.logins == [b"jobyard"]
    assert len(inbox.mails) == 1
    assert info.value.reason.startswith("SMTP 535 login refused: ")
    assert "wrong-password" not in info.value.reason


def test_starttls_refuses_an_untrusted_certificate(certificate: tuple[Path, Path]) -> None:
    inbox = Inbox()
    server = smtp_server(inbox, tls_context=server_tls(certificate))
    with server as port, pytest.raises(DeliveryError) as info:
        mail_channel(port, security="starttls").send(message(), environ={})
    assert info.value.reason.startswith("TLS certificate not trusted: ")
    assert inbox.mails == []


def test_implicit_tls(certificate: tuple[Path, Path]) -> None:
    inbox = Inbox()
    with smtp_server(inbox, ssl_context=server_tls(certificate)) as port:
        mail_channel(port, security="tls", ca_file=str(certificate[0])).send(message(), environ={})
    assert [mail["X-Jobyard-Delivery"] for _, mail in inbox.mails] == ["dlv-7"]


# -- webhooks ----------------------------------------------------------------------------------
class Receiver(ThreadingHTTPServer):
    """Keeps every request; answers ``status`` (401 for a bad signature when ``secret``)."""

    daemon_threads = True

    def __init__(self, status: int = 204, secret: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.status = status
        self.secret = secret
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((self.path, dict(self.headers.items()), body))
        status = self.server.status
        signature = self.headers.get("X-Jobyard-Signature")
        if self.server.secret and not verify_signature(self.server.secret, body, signature):
            status = 401
        self.send_response(status)
        if status in (301, 302):
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


@contextmanager
def receiver(status: int = 204, secret: str | None = None) -> Iterator[Receiver]:
    server = Receiver(status, secret)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def hook(url: str, **options: Any) -> WebhookChannel:
    return WebhookChannel(url=url, **{"secret_env": "HOOK_SECRET", "timeout": 5, **options})


def test_webhook_posts_signed_json() -> None:
    sent = message(())
    with receiver(secret=SECRET) as server:
        hook(server.url, headers={"X-Team": "data"}).send(sent, environ=ENV)
    [(path, headers, body)] = server.requests
    assert path == "/hook"
    assert json.loads(body) == sent.payload
    assert body == sent.body()
    assert verify_signature(SECRET, body, headers["X-Jobyard-Signature"])
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Jobyard-Event"] == "failed"
    assert headers["X-Jobyard-Delivery"] == "dlv-7"
    assert headers["User-Agent"] == f"jobyard/{__version__}"
    assert headers["X-Team"] == "data"


def test_a_receiver_with_another_secret_refuses() -> None:
    with receiver(secret="not-the-same") as server, pytest.raises(DeliveryError) as info:
        hook(server.url).send(message(()), environ=ENV)
    assert info.value.reason == f"HTTP 401 from {server.url}"


def test_an_unsigned_webhook_has_no_signature() -> None:
    with receiver() as server:
        WebhookChannel(url=server.url).send(message(()), environ={})
    [(_, headers, _)] = server.requests
    assert "X-Jobyard-Signature" not in headers


@pytest.mark.parametrize("status", [500, 302, 404])
def test_anything_but_2xx_fails(status: int) -> None:
    with receiver(status=status) as server, pytest.raises(DeliveryError) as info:
        hook(server.url + "?token=abc").send(message(()), environ=ENV)
    assert info.value.reason == f"HTTP {status} from {server.url}"  # no query: it may hold a token
    assert len(server.requests) == 1  # a redirect is not followed


def test_a_receiver_that_never_answers_times_out() -> None:
    with silent_port() as port, pytest.raises(DeliveryError) as info:
        hook(f"http://127.0.0.1:{port}/hook", timeout=0.5).send(message(()), environ=ENV)
    assert info.value.reason == "timed out after 0.5 s"


def test_a_closed_port_refuses_the_webhook() -> None:
    port = free_port()
    with pytest.raises(DeliveryError) as info:
        hook(f"http://127.0.0.1:{port}/hook").send(message(()), environ=ENV)
    assert info.value.reason == f"connection refused by http://127.0.0.1:{port}/hook"


@pytest.mark.parametrize(
    ("options", "content_type", "key"),
    [
        ({"format": "slack"}, "application/json", "blocks"),
        ({"format": "teams"}, "application/json", "attachments"),
        ({"template": '{"alert": {{ summary | tojson }}}'}, "application/json", "alert"),
    ],
)
def test_formatted_bodies_are_posted_and_signed(
    options: dict[str, Any], content_type: str, key: str
) -> None:
    channel = hook("http://unused", **options)
    with receiver(secret=SECRET) as server:
        channel.model_copy(update={"url": server.url}).send(message(()), environ=ENV)
    [(_, headers, body)] = server.requests
    assert headers["Content-Type"] == content_type
    assert verify_signature(SECRET, body, headers["X-Jobyard-Signature"])  # the bytes sent
    assert key in json.loads(body)
    assert headers["X-Jobyard-Delivery"] == "dlv-7"


def test_a_plain_text_template_keeps_its_content_type() -> None:
    channel = hook("http://unused", template="{{ text }}", content_type="text/plain; charset=utf-8")
    with receiver(secret=SECRET) as server:
        channel.model_copy(update={"url": server.url}).send(message(()), environ=ENV)
    [(_, headers, body)] = server.requests
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body.decode() == message(()).text
