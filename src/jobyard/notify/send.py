"""Sending a :class:`~jobyard.notify.message.Message`: SMTP mail and signed webhooks
(AMQP is in :mod:`.amqp`).

Every failure raises :class:`DeliveryError` whose ``reason`` is one short line that
holds no secret (``SMTP 554 refused: …``, ``HTTP 500 from https://host/path``,
``timed out after 5 s``, ``connection refused by host:port``), fit for logs and the API.

Webhook signatures: ``X-Jobyard-Signature: sha256=<hex>``, where ``<hex>`` is the
HMAC-SHA256 of the exact body bytes keyed with the channel's secret (UTF-8);
receivers check it with :func:`verify_signature`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import smtplib
import socket
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from jobyard import __version__
from jobyard.notify.message import Message

if TYPE_CHECKING:
    from jobyard.notify.channels import EmailChannel, WebhookChannel

SIGNATURE_HEADER = "X-Jobyard-Signature"
EVENT_HEADER = "X-Jobyard-Event"
DELIVERY_HEADER = "X-Jobyard-Delivery"
USER_AGENT = f"jobyard/{__version__}"
_MAX_REPLY = 200


class DeliveryError(Exception):
    """A message that did not get through; ``reason`` says why, without secrets."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- signatures -----------------------------------------------------------------------
def sign(secret: str | bytes, body: bytes) -> str:
    """The ``X-Jobyard-Signature`` value of ``body``: ``sha256=`` and the hex HMAC."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` (the ``X-Jobyard-Signature`` received) signs ``body`` with
    ``secret``; the comparison takes the same time wherever the strings differ."""
    if not header:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def display_url(url: str) -> str:
    """How errors and the API show ``url``: no credentials, query or fragment, and no
    path past its first segment, since chat webhooks carry their secret in the path
    (``https://hooks.slack.com/services/T…/B…/secret`` shows as ``…/services/…``)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    first, _, rest = parts.path.lstrip("/").partition("/")
    path = f"/{first}/…" if rest else parts.path
    return f"{parts.scheme}://{parts.hostname}{port}{path}"


def read_secret(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name)
    if not value:
        raise DeliveryError(f"environment variable {name} is not set")
    return value


# -- email ----------------------------------------------------------------------------
def send_email(channel: EmailChannel, message: Message, environ: Mapping[str, str]) -> None:
    """Mail ``message`` to ``message.to`` through ``channel``'s SMTP server."""
    if not message.to:
        raise DeliveryError("no recipients")
    password = read_secret(environ, channel.password_env) if channel.password_env else None
    mail = _mail(channel, message)
    try:
        smtp = _connect(channel)
        try:
            if channel.security == "starttls":
                smtp.starttls(context=_tls_context(channel))
            if channel.user is not None and password is not None:
                smtp.login(channel.user, password)
            smtp.send_message(mail)
            _quit(smtp)
        finally:
            smtp.close()
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(_smtp_reason(exc, channel)) from None


def _mail(channel: EmailChannel, message: Message) -> EmailMessage:
    parts = channel.parts(message)
    mail = EmailMessage()
    mail["Subject"] = parts.subject
    mail["From"] = channel.sender
    mail["To"] = ", ".join(message.to)
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(domain=channel.sender.rpartition("@")[2])
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    mail[EVENT_HEADER] = message.event
    mail[DELIVERY_HEADER] = message.delivery_id
    mail.set_content(parts.text)
    if parts.html is not None:
        mail.add_alternative(parts.html, subtype="html")
    return mail


def _connect(channel: EmailChannel) -> smtplib.SMTP:
    host, port, timeout = channel.host, channel.smtp_port, channel.timeout
    if channel.security == "tls":
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls_context(channel))
    return smtplib.SMTP(host, port, timeout=timeout)


def _quit(smtp: smtplib.SMTP) -> None:
    # the message is accepted: a server that hangs up early has not lost it
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.quit()


def _tls_context(channel: EmailChannel) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=channel.ca_file)


def _smtp_reason(exc: BaseException, channel: EmailChannel) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, reply = next(iter(exc.recipients.values()))
        return f"SMTP {code} refused {', '.join(exc.recipients)}: {_reply(reply)}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"SMTP {exc.smtp_code} login refused: {_reply(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code} refused: {_reply(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        cause = exc.__cause__ or exc.__context__  # smtplib turns a timeout into this
        if cause is None:
            return "the server closed the connection"
        return network_reason(cause, channel.timeout, f"{channel.host}:{channel.smtp_port}")
    if isinstance(exc, smtplib.SMTPException):
        return f"SMTP error: {_reply(str(exc))}"
    return network_reason(exc, channel.timeout, f"{channel.host}:{channel.smtp_port}")


def _reply(text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return " ".join(text.split())[:_MAX_REPLY]


def network_reason(exc: BaseException, timeout: float, where: str) -> str:
    """A socket-level failure, looked for along ``exc``'s chain of causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return f"timed out after {timeout:g} s"
        if isinstance(seen, ConnectionRefusedError):
            return f"connection refused by {where}"
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted: {seen.verify_message}"
        if isinstance(seen, ssl.SSLError):
            return f"TLS failed: {seen.reason or type(seen).__name__}"
        if isinstance(seen, socket.gaierror):
            return f"cannot resolve {where}"
        if isinstance(seen, OSError) and seen.strerror:
            return f"cannot connect to {where}: {seen.strerror}"
        seen = seen.__cause__ or seen.__context__
    return f"{type(exc).__name__} talking to {where}"


# -- webhook --------------------------------------------------------------------------
def send_webhook(channel: WebhookChannel, message: Message, environ: Mapping[str, str]) -> None:
    """POST the channel's body for ``message`` (:meth:`WebhookChannel.body`) to
    ``channel.url``; anything but a 2xx is a failure."""
    body, content_type = channel.body(message)
    headers = {
        **channel.headers,
        "Content-Type": content_type,
        "User-Agent": USER_AGENT,
        EVENT_HEADER: message.event,
        DELIVERY_HEADER: message.delivery_id,
    }
    if channel.secret_env:
        headers[SIGNATURE_HEADER] = sign(read_secret(environ, channel.secret_env), body)
    where = display_url(channel.url)
    try:
        response = httpx.post(channel.url, content=body, headers=headers, timeout=channel.timeout)
    except httpx.TimeoutException:
        raise DeliveryError(f"timed out after {channel.timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(network_reason(exc, channel.timeout, where)) from None
    if not response.is_success:
        raise DeliveryError(f"HTTP {response.status_code} from {where}")
