"""The RabbitMQ server of the test machine (127.0.0.1:5672, guest/guest), for AMQP channels.

A broker that does not answer skips its cases, or fails them when
``JOBYARD_REQUIRE_SERVICES=1``. :func:`queue_on` binds a fresh queue to an exchange and
:func:`take` waits for a message on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pika
import psutil
import pytest
from pika.adapters.blocking_connection import BlockingChannel

URL = os.environ.get("JOBYARD_TEST_AMQP_URL", "amqp://127.0.0.1:5672/%2F")


@dataclass
class Received:
    """A message taken from a queue."""

    routing_key: str
    properties: Any
    body: bytes


def connect() -> pika.BlockingConnection:
    """A connection to the test broker, or a skip (a failure with required services)."""
    params = pika.URLParameters(URL)
    params.connection_attempts = 1
    params.socket_timeout = 5
    try:
        return pika.BlockingConnection(params)
    except Exception as exc:  # pika wraps the socket error several times
        reason = f"RabbitMQ does not answer at {URL}: {exc!r}"
        if os.environ.get("JOBYARD_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def unique(name: str) -> str:
    return f"jobyard-test-{name}-{uuid.uuid4().hex[:8]}"


@contextmanager
def queue_on(
    channel: BlockingChannel, exchange: str, binding: str = "#", kind: str = "topic"
) -> Iterator[str]:
    """A new queue bound to ``exchange`` (declared durable of ``kind``); both removed after."""
    channel.exchange_declare(exchange, kind, durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, exchange, binding)
    try:
        yield queue
    finally:
        channel.queue_delete(queue)
        channel.exchange_delete(exchange)


def take(channel: BlockingChannel, queue: str, timeout: float = 30.0) -> Received:
    """The next message on ``queue``, waited for (polled) until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            return Received(method.routing_key, properties, body)
        assert time.monotonic() < deadline, f"no message on {queue} within {timeout} s"
        channel.connection.sleep(0.05)


def close_connections(name: str) -> int:
    """Close this process's broker connections named ``name`` as an operator would; how many.

    Only this process's: a server under another test may hold one of that name too.
    """
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("needs rabbitmqctl to close a connection")
    listed = subprocess.run(
        [
            "rabbitmqctl",
            "list_connections",
            "pid",
            "client_properties",
            "peer_port",
            "-q",
            "--no-table-headers",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    named = f'{{"connection_name","{name}"}}'
    ours = {conn.laddr.port for conn in psutil.Process().net_connections("tcp") if conn.laddr}
    pids = [
        line.split("\t")[0]
        for line in listed
        if named in line and int(line.rsplit("\t", 1)[1]) in ours
    ]
    for pid in pids:
        subprocess.run(
            ["rabbitmqctl", "close_connection", pid, "closed by the test"],
            capture_output=True,
            check=True,
        )
    return len(pids)
