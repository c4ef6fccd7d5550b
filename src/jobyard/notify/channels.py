"""Notification channels and rules: the ``notifications:`` section of ``jobyard.yaml``.

:func:`parse_notifications` turns the section into a frozen :class:`NotificationConfig`
or raises :class:`NotificationsInvalid` naming every bad field (unknown events,
rules naming unknown channels, email with nobody to write to, bad URLs, missing
fields, unset environment variables). Secrets never live in these objects: a
channel names the environment variable that holds one (``password_env``,
``secret_env``) and the sender reads it when it sends, so ``repr()`` and
:meth:`EmailChannel.public_dict` have nothing to leak.

How the outbox uses it, per event::

    for delivery in config.route(event, job_type, workflow):       # pure
        message = render(notice, delivery_id=..., to=delivery.to)  # notify_message
        try:
            config.channels[delivery.channel].send(message)        # I/O
        except DeliveryError as exc:                               # channel_send
            ...  # exc.reason is short and secret-free
            config.retry_for(delivery.channel).delay(attempt)      # seconds to wait
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)
from pydantic import ValidationError as PydanticError

from jobyard.errors import Invalid
from jobyard.jobtypes.params import FieldError, model_problems, summary
from jobyard.jobtypes.spec import NAME_RE
from jobyard.notify import formats, mail
from jobyard.notify import send as channel_send
from jobyard.notify.amqp import Publisher
from jobyard.notify.fields import (
    EVENTS,
    JOB_EVENTS,
    WORKFLOW_EVENTS,
    Address,
    Addresses,
    AmqpUrl,
    ContentType,
    EnvName,
    Events,
    HeaderName,
    HeaderValue,
    Names,
    Timeout,
    WebUrl,
)
from jobyard.notify.jinja import FieldProblem, TemplateProblem
from jobyard.notify.message import Message
from jobyard.spelling import did_you_mean

__all__ = ["EVENTS", "JOB_EVENTS", "WORKFLOW_EVENTS"]  # re-exported: where events are named

SECURITY_PORTS = {"starttls": 587, "tls": 465, "none": 25}


class NotificationsInvalid(Invalid):
    """A ``notifications`` section with problems; ``errors`` lists every one."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(summary("the notifications are invalid", errors), errors)


# -- models ---------------------------------------------------------------------------
class RetryPolicy(BaseModel):
    """How often a delivery is tried, and how long it waits between tries (doubling)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=5, ge=1, le=100)
    initial: Timeout = 10.0
    max_delay: Timeout = 600.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failed try (1-based):
        ``initial * 2 ** (attempt - 1)``, at most ``max_delay``."""
        return min(self.initial * 2.0 ** max(attempt - 1, 0), self.max_delay)


class EmailChannel(BaseModel):
    """Mail through an SMTP server; ``port`` defaults by ``security`` (587, 465, 25). Its
    subject, text and HTML come from templates (:mod:`.mail`), its own keys winning."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["email"] = "email"
    host: Annotated[str, Field(min_length=1, pattern=r"^[^\s/]+$")]
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    user: str | None = None
    password_env: EnvName | None = None
    sender: Address
    to: Addresses = ()
    timeout: Timeout = 10.0
    retry: RetryPolicy | None = None
    ca_file: str | None = None
    subject_template: str | None = None
    body_template: str | None = None
    body_template_file: str | None = None
    html_template_file: str | None = None
    _mail: mail.MailTemplates | None = PrivateAttr(default=None)  # None: the shipped ones

    @property
    def smtp_port(self) -> int:
        return self.port or SECURITY_PORTS[self.security]

    def with_templates(self, templates: mail.MailTemplates) -> Self:
        """A copy that writes its mail with ``templates`` (resolved and tried at load)."""
        copy = self.model_copy()
        copy._mail = templates
        return copy

    def parts(self, message: Message) -> mail.MailParts:
        """The subject, text and HTML of the mail for ``message``; raises
        :class:`channel_send.DeliveryError` when a template cannot make them."""
        if self._mail is None:
            return mail.MailParts(message.subject, message.text)
        try:
            return mail.render(self._mail, message.payload)
        except TemplateProblem as exc:
            raise channel_send.DeliveryError(exc.reason) from None

    def secret_envs(self) -> dict[str, str]:
        """``{field: environment variable}`` for the secrets this channel reads."""
        return {"password_env": self.password_env} if self.password_env else {}

    def public_dict(self) -> dict[str, Any]:
        """What the API and logs may show: no secret, only whether one is set."""
        return {
            "type": self.type,
            "host": self.host,
            "port": self.smtp_port,
            "security": self.security,
            "user": self.user,
            "password": "set" if self.password_env else None,
            "sender": self.sender,
            "to": list(self.to),
            "timeout": self.timeout,
        }

    def send(self, message: Message, environ: Mapping[str, str] | None = None) -> None:
        """Mail ``message`` to ``message.to``; raises :class:`channel_send.DeliveryError`.

        The password is read from ``environ`` (default: the process environment).
        """
        channel_send.send_email(self, message, os.environ if environ is None else environ)


class BodyFormat(BaseModel):
    """How a webhook or AMQP channel writes a message: ``format`` and its template
    (:mod:`.formats`). A ``template`` or ``template_file`` alone means ``format: template``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["json", "slack", "teams", "template"] = "json"
    template: str | None = None
    template_file: str | None = None
    content_type: ContentType | None = None
    _source: str | None = PrivateAttr(default=None)  # the template's text, once resolved

    @model_validator(mode="before")
    @classmethod
    def _template_means_format(cls, data: Any) -> Any:
        templated = isinstance(data, Mapping) and any(
            data.get(key) is not None for key in ("template", "template_file")
        )
        if templated and "format" not in data:
            return {**data, "format": "template"}
        return data

    @property
    def media_type(self) -> str:
        """The body's ``Content-Type``: ``content_type``, or JSON."""
        return self.content_type or formats.JSON_TYPE

    def template_source(self) -> str | None:
        """The text of the body's template (``None`` for ``format: json``): as loading
        resolved it (with the ``templates:`` directory), else found now."""
        if self._source is not None or self.format == "json":
            return self._source
        if self.format in formats.SHIPPED_FILES:
            return formats.shipped_source(self.format)[1]
        if self.template is not None:
            return self.template
        return None if self.template_file is None else Path(self.template_file).read_text()

    def with_source(self, source: str) -> Self:
        """A copy that renders ``source`` (the template's text, read at load)."""
        copy = self.model_copy()
        copy._source = source
        return copy

    def body(self, message: Message) -> tuple[bytes, str]:
        """``(body, content type)`` for ``message``; raises :class:`channel_send.DeliveryError`
        when the template cannot make it."""
        source = self.template_source()
        if source is None:
            return message.body(), self.media_type
        try:
            return formats.render_body(source, message, self.media_type), self.media_type
        except TemplateProblem as exc:
            raise channel_send.DeliveryError(exc.reason) from None


class WebhookChannel(BodyFormat):
    """A POST to ``url`` (JSON, Slack, Teams or a template), signed with HMAC-SHA256 when
    ``secret_env`` is set."""

    type: Literal["webhook"] = "webhook"
    url: WebUrl
    secret_env: EnvName | None = None
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    timeout: Timeout = 10.0
    retry: RetryPolicy | None = None

    def secret_envs(self) -> dict[str, str]:
        """``{field: environment variable}`` for the secrets this channel reads."""
        return {"secret_env": self.secret_env} if self.secret_env else {}

    def public_dict(self) -> dict[str, Any]:
        """What the API and logs may show: header names but not their values."""
        return {
            "type": self.type,
            "url": channel_send.display_url(self.url),
            "format": self.format,
            "signed": self.secret_env is not None,
            "headers": sorted(self.headers),
            "timeout": self.timeout,
        }

    def send(self, message: Message, environ: Mapping[str, str] | None = None) -> None:
        """POST :meth:`body`; raises :class:`channel_send.DeliveryError` unless 2xx.

        The signing secret is read from ``environ`` (default: the process environment).
        """
        channel_send.send_webhook(self, message, os.environ if environ is None else environ)


class AmqpChannel(BodyFormat):
    """Publishes to a RabbitMQ ``exchange`` (:mod:`.amqp`): persistent, confirmed, with a
    ``routing_key`` rendered from a Jinja2 template; declares the exchange (durable) when
    ``exchange_type`` is given."""

    type: Literal["amqp"] = "amqp"
    url: AmqpUrl
    user: str | None = None
    password_env: EnvName | None = None
    exchange: str = Field(max_length=255)
    exchange_type: Literal["direct", "topic", "fanout", "headers"] | None = None
    routing_key: str = Field(default="jobyard.{{ event }}", min_length=1, max_length=1000)
    mandatory: bool = True
    timeout: Timeout = 10.0
    retry: RetryPolicy | None = None
    _publisher: Publisher = PrivateAttr(default_factory=Publisher)

    def secret_envs(self) -> dict[str, str]:
        """``{field: environment variable}`` for the secrets this channel reads."""
        return {"password_env": self.password_env} if self.password_env else {}

    def public_dict(self) -> dict[str, Any]:
        """What the API and logs may show: no secret, only whether one is set."""
        return {
            "type": self.type,
            "url": channel_send.display_url(self.url),
            "user": self.user,
            "password": "set" if self.password_env else None,
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "format": self.format,
            "timeout": self.timeout,
        }

    def routing_key_for(self, message: Message) -> str:
        """The routing key of ``message`` (at most 255 bytes, as AMQP allows)."""
        try:
            key = formats.render_text(self.routing_key, message)
        except TemplateProblem as exc:
            raise channel_send.DeliveryError(f"routing_key: {exc.reason}") from None
        if len(key.encode()) > 255:
            raise channel_send.DeliveryError("routing_key: longer than 255 bytes")
        return key

    def send(self, message: Message, environ: Mapping[str, str] | None = None) -> None:
        """Publish :meth:`body` and wait for the broker's confirm; raises
        :class:`channel_send.DeliveryError`. The password is read from ``environ``."""
        body, content_type = self.body(message)
        key = self.routing_key_for(message)
        env = os.environ if environ is None else environ
        self._publisher.publish(self, message, key, body, content_type, env)

    def close(self) -> None:
        """Close the broker connection (the next send opens a new one)."""
        self._publisher.close()


Channel = EmailChannel | WebhookChannel | AmqpChannel
CHANNEL_TYPES: dict[str, type[BaseModel]] = {
    "email": EmailChannel,
    "webhook": WebhookChannel,
    "amqp": AmqpChannel,
}


class Rule(BaseModel):
    """Which events go to which channels; ``job_types``/``workflows`` narrow it when set,
    ``to`` replaces the recipients of its email channels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events: Events = Field(min_length=1)
    channels: Names = Field(min_length=1)
    job_types: Names | None = None
    workflows: Names | None = None
    to: Addresses = ()

    def matches(self, event: str, job_type: str | None, workflow: str | None) -> bool:
        """Whether an ``event`` of a job of ``job_type`` (in ``workflow``) is for this rule."""
        if event not in self.events:
            return False
        if self.job_types is not None and job_type not in self.job_types:
            return False
        return self.workflows is None or workflow in self.workflows


@dataclass(frozen=True)
class Delivery:
    """One message to send: through ``channel``, to ``to`` (email; empty for webhooks)."""

    channel: str
    to: tuple[str, ...] = ()


class NotificationConfig(BaseModel):
    """The whole section. Build it with :func:`parse_notifications`, which checks the
    cross-references (rules → channels, recipients, environment) too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    public_url: WebUrl | None = None
    templates: str | None = None
    retry: RetryPolicy = RetryPolicy()
    channels: dict[str, Channel] = Field(default_factory=dict)
    rules: tuple[Rule, ...] = ()

    def route(self, event: str, job_type: str | None, workflow: str | None) -> list[Delivery]:
        """The deliveries for an event: one per channel, whatever number of rules match,
        with the recipients of every matching rule merged in order."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}")
        found: dict[str, list[str]] = {}
        for rule in self.rules:
            if not rule.matches(event, job_type, workflow):
                continue
            for name in rule.channels:
                recipients = found.setdefault(name, [])
                channel = self.channels[name]
                if isinstance(channel, EmailChannel):
                    recipients += [a for a in rule.to or channel.to if a not in recipients]
        return [Delivery(name, tuple(to)) for name, to in found.items()]

    def retry_for(self, channel: str) -> RetryPolicy:
        """The channel's retry policy: its own keys over the section's ``retry``."""
        own = self.channels[channel].retry
        if own is None:
            return self.retry
        return self.retry.model_copy(update={k: getattr(own, k) for k in own.model_fields_set})

    def job_link(self, job_id: int) -> str | None:
        """The page of a job under ``public_url``, or ``None`` without one."""
        return None if self.public_url is None else f"{self.public_url.rstrip('/')}/jobs/{job_id}"

    def run_link(self, run_id: int) -> str | None:
        """The page of a workflow run under ``public_url``, or ``None`` without one."""
        base = self.public_url
        return None if base is None else f"{base.rstrip('/')}/runs/{run_id}"

    def public_dict(self) -> dict[str, Any]:
        """The section as the API may show it: channels without secrets, each with the
        retry policy it is sent with (its own keys over the section's)."""
        return {
            "public_url": self.public_url,
            "retry": self.retry.model_dump(),
            "channels": {
                name: {**ch.public_dict(), "retry": self.retry_for(name).model_dump()}
                for name, ch in self.channels.items()
            },
            "rules": [rule.model_dump(mode="json") for rule in self.rules],
        }


# -- parsing --------------------------------------------------------------------------
_MODELS = (NotificationConfig, RetryPolicy, EmailChannel, WebhookChannel, AmqpChannel, Rule)
_KNOWN_KEYS = sorted({key for model in _MODELS for key in model.model_fields})
_EMPTY = "must not be empty"


def parse_notifications(
    data: Any,
    *,
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    check_secrets: bool = True,
) -> NotificationConfig:
    """Build the section from ``data`` (the YAML mapping; ``None`` is an empty one).

    ``environ`` (default: the process environment) must set every variable named by
    ``password_env``/``secret_env`` unless ``check_secrets`` is false (a process that sends
    nothing, such as a worker); a relative ``ca_file``, ``templates`` or ``template_file``
    resolves against ``base_dir``; every template is rendered once with sample messages.
    Raises :class:`NotificationsInvalid` listing every problem with its field.
    """
    secrets = (os.environ if environ is None else environ) if check_secrets else None
    parser = _Parser(secrets, base_dir or Path.cwd())
    config = parser.parse({} if data is None else data)
    if parser.problems or config is None:
        raise NotificationsInvalid(parser.problems)
    return config


class _Parser:
    def __init__(self, environ: Mapping[str, str] | None, base_dir: Path) -> None:
        self.environ = environ  # None: secrets are not checked here
        self.base_dir = base_dir
        self.templates: Path | None = None  # the `templates:` directory
        self.mail: mail.MailTemplates | None = None  # the email's, with that directory's files
        self.problems: list[FieldError] = []

    def problem(self, field: str, message: str) -> None:
        self.problems.append({"field": field, "message": message})

    def validate(self, model: type[BaseModel], data: Any, where: str) -> Any:
        try:
            return model.model_validate(data)
        except PydanticError as exc:
            found = model_problems(exc, _KNOWN_KEYS, {"too_short": _EMPTY})
            for p in found:
                # A list whose items are wrong is "too short" too, once they are left out:
                # its items' own problems say it better.
                inner = any(q["field"].startswith(f"{p['field']}.") for q in found)
                if not (p["message"] == _EMPTY and inner):
                    field = ".".join(part for part in (where, p["field"]) if part)
                    self.problem(field, p["message"])
            return None

    def parse(self, data: Any) -> NotificationConfig | None:
        if not isinstance(data, Mapping):
            self.problem("", "a mapping with public_url, retry, channels and rules")
            return None
        head = {k: v for k, v in data.items() if k not in ("channels", "rules")}
        top: NotificationConfig | None = self.validate(NotificationConfig, head, "")
        if top is not None and top.templates is not None:
            self.templates = self.base_dir / top.templates
            if not self.templates.is_dir():
                self.problem("templates", f"no such directory: {self.templates}")
            top = top.model_copy(update={"templates": str(self.templates)})
            self.mail = self.directory_mail() if self.templates.is_dir() else None
        channels, broken = self.channels(data.get("channels") or {})
        rules = self.rules(data.get("rules") or [], channels, broken)
        if top is None:
            return None
        return top.model_copy(update={"channels": channels, "rules": tuple(rules)})

    def channels(self, raw: Any) -> tuple[dict[str, Channel], set[str]]:
        """The valid channels, and the names of those written but broken."""
        if not isinstance(raw, Mapping):
            self.problem("channels", "a mapping of channel names to channels")
            return {}, set()
        channels = {}
        for name, value in raw.items():
            where = f"channels.{name}"
            if not NAME_RE.fullmatch(str(name)):
                self.problem(where, "a channel name is letters, digits, '_', '.', '-'")
            channel = self.channel(value, where)
            if channel is not None and self.check_channel(channel, where):
                resolved = self.resolve(channel, where)
                if resolved is not None:
                    channels[str(name)] = resolved
        return channels, {str(name) for name in raw} - set(channels)

    def channel(self, value: Any, where: str) -> Channel | None:
        if not isinstance(value, Mapping):
            self.problem(where, f"a channel is a mapping with type: {', '.join(CHANNEL_TYPES)}")
            return None
        kind = value.get("type")
        model = CHANNEL_TYPES.get(kind) if isinstance(kind, str) else None
        if model is None:
            known = ", ".join(CHANNEL_TYPES)
            hint = did_you_mean(str(kind), CHANNEL_TYPES)
            self.problem(f"{where}.type", f"give a channel type: {known}{hint}")
            return None
        channel: Channel | None = self.validate(model, value, where)
        return channel

    def check_channel(self, channel: Channel, where: str) -> bool:
        ok = True
        for field, env in channel.secret_envs().items():
            if self.environ is not None and not self.environ.get(env):
                self.problem(f"{where}.{field}", f"environment variable {env} is not set")
                ok = False
        if isinstance(channel, EmailChannel):
            ok = self.check_email(channel, where) and ok
        if isinstance(channel, AmqpChannel):
            ok = self.check_amqp(channel, where) and ok
        return ok

    def check_amqp(self, channel: AmqpChannel, where: str) -> bool:
        ok = True
        if (channel.user is None) != (channel.password_env is None):
            given = "user" if channel.password_env is None else "password_env"
            self.problem(f"{where}.{given}", "give user and password_env together")
            ok = False
        if channel.exchange_type is not None and not channel.exchange:
            self.problem(f"{where}.exchange_type", "the default exchange ('') is not declared")
            ok = False
        problem = formats.check(channel.routing_key, None)
        if problem is not None:
            self.problem(f"{where}.routing_key", problem)
            ok = False
        return ok

    def check_email(self, channel: EmailChannel, where: str) -> bool:
        ok = True
        if (channel.user is None) != (channel.password_env is None):
            given = "user" if channel.password_env is None else "password_env"
            self.problem(f"{where}.{given}", "give user and password_env together")
            ok = False
        if channel.ca_file is not None:
            path = self.base_dir / channel.ca_file
            if not path.is_file():
                self.problem(f"{where}.ca_file", f"no such file: {path}")
                ok = False
        return ok

    def resolve(self, channel: Channel, where: str) -> Channel | None:
        if isinstance(channel, EmailChannel):
            return self.email_templates(channel, where)
        if isinstance(channel, BodyFormat):
            return self.body_format(channel, where)
        return channel

    def directory_mail(self) -> mail.MailTemplates | None:
        """The email templates with the ``templates:`` directory's files, tried; ``None``
        when it has none (or after a problem)."""
        try:
            return mail.from_directory(self.templates, formats.sample_payloads())
        except FieldProblem as exc:
            self.problem(exc.field, exc.reason)
            return None

    def email_templates(self, channel: EmailChannel, where: str) -> EmailChannel | None:
        """The channel with its ``ca_file`` resolved and its mail's templates read and
        tried; ``None`` after a problem."""
        if channel.ca_file is not None:
            channel = channel.model_copy(update={"ca_file": str(self.base_dir / channel.ca_file)})
        own = {key: getattr(channel, key) for key in mail.CHANNEL_KEYS}
        try:
            templates = mail.for_channel(self.mail, own, self.base_dir, formats.sample_payloads())
        except FieldProblem as exc:
            self.problem(f"{where}.{exc.field}", exc.reason)
            return None
        return channel if templates is None else channel.with_templates(templates)

    def body_format(self, channel: WebhookChannel | AmqpChannel, where: str) -> Channel | None:
        """The channel with its template's text, read and tried; ``None`` after a problem."""
        keys = {"template": channel.template, "template_file": channel.template_file}
        try:
            source = formats.body_source(
                channel.format, keys, channel.media_type, self.templates, self.base_dir
            )
        except FieldProblem as exc:
            self.problem(f"{where}.{exc.field}", exc.reason)
            return None
        return channel if source is None else channel.with_source(source)

    def rules(self, raw: Any, channels: Mapping[str, Channel], broken: set[str]) -> list[Rule]:
        if not isinstance(raw, list):
            self.problem("rules", "a list of rules (events, channels, …)")
            return []
        rules = []
        for index, value in enumerate(raw):
            where = f"rules.{index}"
            rule: Rule | None = self.validate(Rule, value, where)
            if rule is not None:
                if self.check_rule(rule.channels, bool(rule.to), where, channels, broken):
                    rules.append(rule)
            elif isinstance(value, Mapping):  # its channels are checked too, all said at once
                names = _strings(value.get("channels"))
                self.check_rule(names, bool(value.get("to")), where, channels, broken)
        return rules

    def check_rule(
        self,
        names: Sequence[str],
        has_to: bool,
        where: str,
        channels: Mapping[str, Channel],
        broken: set[str],
    ) -> bool:
        """Whether the rule's channels exist and can be sent to (problems said)."""
        ok = True
        for name in names:
            channel = channels.get(name)
            if channel is None and name not in broken:
                hint = did_you_mean(name, [*channels, *sorted(broken)])
                self.problem(f"{where}.channels", f"unknown channel {name!r}{hint}")
                ok = False
            elif isinstance(channel, EmailChannel) and not (has_to or channel.to):
                message = f"email channel {name!r} has no `to`: give recipients here or there"
                self.problem(f"{where}.to", message)
                ok = False
        return ok and not any(name in broken for name in names)


def _strings(value: Any) -> list[str]:
    """The names of a list (or a single name) as written, whatever else is wrong with it."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return [item for item in items if isinstance(item, str)]
