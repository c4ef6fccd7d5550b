"""Publishing a message to a RabbitMQ exchange (AMQP 0-9-1) with pika.

Every message is persistent (``delivery_mode`` 2) and published with publisher confirms:
a send succeeds only once the broker has taken responsibility for it (and, with
``mandatory``, routed it to at least one queue). Anything else raises
:class:`~jobyard.notify.send.DeliveryError`, so the outbox tries again later; the
message carries the delivery id as ``message_id``, the same on every try, which lets
consumers drop the duplicates that at-least-once delivery allows.

pika's ``BlockingConnection`` is not thread-safe and the dispatcher sends from a few
threads, so each AMQP channel keeps one :class:`Publisher`: one connection, used under a
lock. The connection is opened at the first send and reused while it is busy; one that
sat idle longer than half its heartbeat interval is reopened (the broker may have given
up on it), and one that turns out dead when used (the broker restarted, an operator
closed it) is reopened at once and the publish tried once more.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jobyard.notify.message import Message
from jobyard.notify.send import DeliveryError, display_url, network_reason, read_secret

if TYPE_CHECKING:  # pika is imported when a message is sent: loading a file needs none of it
    import pika
    from pika.adapters.blocking_connection import BlockingChannel

    from jobyard.notify.channels import AmqpChannel

APP_ID = "jobyard"
CONNECTION_NAME = f"jobyard notifications {socket.gethostname()} pid {os.getpid()}"
"""How the broker lists the connection (``rabbitmqctl list_connections client_properties``)."""


class Publisher:
    """One AMQP connection and channel, shared by the dispatcher's threads under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._used = 0.0

    def publish(
        self,
        channel: AmqpChannel,
        message: Message,
        routing_key: str,
        body: bytes,
        content_type: str,
        environ: Mapping[str, str],
    ) -> None:
        """Publish ``body`` and wait for the broker's confirm; raises :class:`DeliveryError`."""
        import pika
        import pika.exceptions as amqp_errors

        properties = pika.BasicProperties(
            content_type=content_type,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=message.delivery_id,
            type=message.event,
            timestamp=int(time.time()),
            app_id=APP_ID,
            headers=_headers(message),
        )
        with self._lock:
            for first in (True, False):
                reused = self._reusable(channel)
                try:
                    self._publish(channel, environ, routing_key, body, properties)
                    return
                except (amqp_errors.UnroutableError, amqp_errors.NackError) as exc:
                    raise DeliveryError(_refusal(exc, channel, routing_key)) from None
                except amqp_errors.ChannelClosedByBroker as exc:
                    self.close()
                    raise DeliveryError(f"AMQP {exc.reply_code}: {exc.reply_text}") from None
                except (amqp_errors.AMQPError, OSError) as exc:
                    self.close()
                    if not (first and reused):  # only a connection kept from before gets a 2nd try
                        raise DeliveryError(_reason(exc, channel)) from None

    def close(self) -> None:
        """Close the connection, if one is open (it is reopened by the next publish)."""
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # it may be dead already
                connection.close()

    def _reusable(self, channel: AmqpChannel) -> bool:
        if self._channel is None:
            return False
        idle = time.monotonic() - self._used
        if idle > _heartbeat(channel) / 2 or not self._channel.is_open:
            self.close()
            return False
        return True

    def _publish(
        self,
        channel: AmqpChannel,
        environ: Mapping[str, str],
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties,
    ) -> None:
        if self._channel is None:
            self._channel = self._open(channel, environ)
        self._channel.basic_publish(
            channel.exchange, routing_key, body, properties, mandatory=channel.mandatory
        )
        self._used = time.monotonic()

    def _open(self, channel: AmqpChannel, environ: Mapping[str, str]) -> BlockingChannel:
        import pika

        params = pika.URLParameters(channel.url)
        if channel.user is not None and channel.password_env is not None:
            password = read_secret(environ, channel.password_env)
            params.credentials = pika.PlainCredentials(channel.user, password)
        params.connection_attempts = 1
        params.socket_timeout = channel.timeout
        params.stack_timeout = channel.timeout
        params.blocked_connection_timeout = channel.timeout
        params.heartbeat = _heartbeat(channel)
        params.client_properties = {"connection_name": CONNECTION_NAME}
        self._connection = pika.BlockingConnection(params)
        opened = self._connection.channel()
        opened.confirm_delivery()
        if channel.exchange_type is not None:
            opened.exchange_declare(channel.exchange, channel.exchange_type, durable=True)
        return opened


def _heartbeat(channel: AmqpChannel) -> int:
    """Seconds between heartbeats: the channel's timeout, so a broker that stops answering
    (even while a confirm is awaited) is noticed within about twice that."""
    return max(1, math.ceil(channel.timeout))


def _headers(message: Message) -> dict[str, Any]:
    """Message headers for headers exchanges and consumers that route without the body."""
    job = message.payload.get("job") or {}
    run = message.payload.get("run") or {}
    found = {
        "event": message.event,
        "job_id": job.get("id"),
        "job_type": job.get("type"),
        "state": job.get("state") or run.get("state"),
        "workflow": job.get("workflow") or run.get("workflow"),
    }
    return {key: value for key, value in found.items() if value is not None}


def _refusal(exc: Exception, channel: AmqpChannel, routing_key: str) -> str:
    import pika.exceptions as amqp_errors

    if isinstance(exc, amqp_errors.UnroutableError):
        return f"no queue is bound to exchange {channel.exchange!r} for {routing_key!r}"
    return "the broker refused the message (nack)"


def _reason(exc: BaseException, channel: AmqpChannel) -> str:
    """One secret-free line for a connection-level failure."""
    import pika.exceptions as amqp_errors

    where = display_url(channel.url)
    if isinstance(exc, amqp_errors.ProbableAuthenticationError):
        return f"login refused by {where}"
    if isinstance(exc, amqp_errors.ProbableAccessDeniedError):
        return f"access to the virtual host refused by {where}"
    if isinstance(exc, amqp_errors.ConnectionClosedByBroker):
        return f"the broker closed the connection: {exc.reply_code} {exc.reply_text}"
    if isinstance(exc, amqp_errors.StreamLostError | amqp_errors.ConnectionWrongStateError):
        return "the connection to the broker was lost"
    if isinstance(exc, amqp_errors.AMQPHeartbeatTimeout):
        return f"the broker did not answer within {_heartbeat(channel)} s"
    inner = _os_error(exc)
    if inner is not None:
        return network_reason(inner, channel.timeout, where)
    return f"{type(exc).__name__} talking to {where}"


def _os_error(exc: BaseException) -> OSError | None:
    """The socket error inside one of pika's wrapped connection errors, if any."""
    seen: list[BaseException] = [exc]
    while seen:
        current = seen.pop()
        if isinstance(current, OSError):
            return current
        seen += [arg for arg in current.args if isinstance(arg, BaseException)]
        inner = (getattr(current, "exception", None), current.__cause__, current.__context__)
        seen += [cause for cause in inner if isinstance(cause, BaseException)]
    return None
