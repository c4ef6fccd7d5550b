"""The amqp channel against the real RabbitMQ server: what a consumer gets, and what fails."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from jobyard.notify.amqp import CONNECTION_NAME
from jobyard.notify.channels import AmqpChannel, parse_notifications
from jobyard.notify.formats import SAMPLES
from jobyard.notify.message import render
from jobyard.notify.send import DeliveryError
from tests.broker import URL, close_connections, connect, queue_on, take, unique
from tests.harness import free_port, wait_for

MESSAGE = render(SAMPLES[0], delivery_id="dlv-42")


@pytest.fixture(scope="module")
def broker() -> Iterator[BlockingChannel]:
    connection = connect()
    yield connection.channel()
    connection.close()


def amqp(exchange: str, **options: Any) -> AmqpChannel:
    raw = {"type": "amqp", "url": URL, "exchange": exchange, "timeout": 20, **options}
    channel = parse_notifications({"channels": {"mq": raw}}, check_secrets=False).channels["mq"]
    assert isinstance(channel, AmqpChannel)
    return channel


def test_a_message_is_persistent_and_carries_the_delivery_id(broker: BlockingChannel) -> None:
    exchange = unique("props")
    channel = amqp(exchange, routing_key="jobs.{{ job.type }}.{{ job.state }}")
    with queue_on(broker, exchange, "jobs.#") as queue:
        channel.send(MESSAGE, environ={})
        got = take(broker, queue)
    channel.close()
    assert got.routing_key == "jobs.etl.failed"
    assert json.loads(got.body) == MESSAGE.payload
    props = got.properties
    assert props.delivery_mode == pika.DeliveryMode.Persistent.value
    assert props.message_id == "dlv-42"
    assert props.content_type == "application/json"
    assert (props.type, props.app_id) == ("failed", "jobyard")
    assert abs(props.timestamp - time.time()) < 60
    assert props.headers == {"event": "failed", "job_id": 42, "job_type": "etl", "state": "failed"}


def test_the_channel_declares_its_exchange_and_formats_the_body(broker: BlockingChannel) -> None:
    exchange = unique("declared")
    channel = amqp(exchange, exchange_type="fanout", format="slack")
    with queue_on(broker, exchange, "", kind="fanout") as queue:
        channel.send(MESSAGE, environ={})
        got = take(broker, queue)
    channel.close()
    assert json.loads(got.body)["text"] == "job 42 (etl) failed: exit code 3"


def test_an_unroutable_message_is_a_failed_try(broker: BlockingChannel) -> None:
    exchange = unique("unroutable")
    channel = amqp(exchange, routing_key="nobody.listens")
    with queue_on(broker, exchange, "jobs.#"), pytest.raises(DeliveryError) as info:
        channel.send(MESSAGE, environ={})
    channel.close()
    assert info.value.reason == f"no queue is bound to exchange {exchange!r} for 'nobody.listens'"


def test_a_missing_exchange_is_named() -> None:
    exchange = unique("missing")
    with pytest.raises(DeliveryError) as info:
        amqp(exchange).send(MESSAGE, environ={})
    assert info.value.reason.startswith(f"AMQP 404: NOT_FOUND - no exchange '{exchange}'")


def test_a_wrong_password_is_refused_without_showing_it() -> None:
    channel = amqp("amq.topic", user="guest", password_env="MQ_PASSWORD")
    with pytest.raises(DeliveryError) as info:
        channel.send(MESSAGE, environ={"MQ_PASSWORD": "not-the-password"})
    assert info.value.reason.startswith("login refused by amqp://127.0.0.1:5672/")
    assert "not-the-password" not in info.value.reason


def test_no_broker_is_connection_refused() -> None:
    port = free_port()
    channel = amqp("amq.topic").model_copy(update={"url": f"amqp://127.0.0.1:{port}/"})
    with pytest.raises(DeliveryError) as info:
        channel.send(MESSAGE, environ={})
    assert info.value.reason == f"connection refused by amqp://127.0.0.1:{port}/"


def test_the_next_send_after_the_broker_drops_the_connection_gets_through(
    broker: BlockingChannel,
) -> None:
    exchange = unique("dropped")
    channel = amqp(exchange, timeout=60)  # a long heartbeat: the connection is kept between sends
    with queue_on(broker, exchange) as queue:
        channel.send(MESSAGE, environ={})
        assert take(broker, queue).properties.message_id == "dlv-42"
        assert close_connections(CONNECTION_NAME) == 1
        wait_for(lambda: close_connections(CONNECTION_NAME) == 0, what="the connection closed")
        second = render(SAMPLES[1], delivery_id="dlv-43")
        channel.send(second, environ={})  # the dead connection is noticed and replaced
        got = take(broker, queue)
        assert close_connections(CONNECTION_NAME) == 1  # the new one
    channel.close()
    assert got.properties.message_id == "dlv-43"
    assert got.routing_key == "jobyard.workflow_failed"
