"""``kill -9`` of the server while its outbox sends a webhook: the notification is not lost.

Delivery is at least once. A message is claimed (``claimed_until``) before it is
sent and its outcome recorded after; a server that dies between the two leaves
the claim to run out (the channel's timeout plus a minute), and then any server
sends the message again:

- killed before the POST (``outbox.send``): the receiver gets it exactly once;
- killed after the receiver accepted it, before the outcome was written
  (``outbox.sent``): the receiver gets it twice, with the same ``delivery`` id,
  which is how a receiver tells a repeat from a new notification.

The tests do not wait the minute out: they move the dead server's claim into
the past, which is all that the passing of that minute does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from jobyard.clock import utcnow
from jobyard.store import Store
from jobyard.store.tables import notifications
from tests.faults.invariants import check_jobs
from tests.harness import Launcher, Server, wait_for
from tests.receivers import HookReceiver, hook_server

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True)

CONFIG = """\
job_types:
  fails:
    command: [sh, -c, 'echo failing; exit 1']
notifications:
  retry: {{max_attempts: 3, initial: 0.2s, max_delay: 1s}}
  channels:
    hook:
      type: webhook
      url: {url}
      timeout: 2s
  rules:
    - events: [failed]
      channels: [hook]
"""


@pytest.fixture
def receiver() -> Iterator[HookReceiver]:
    with hook_server() as served:
        yield served


@pytest.fixture
def config(tmp_path: Path, receiver: HookReceiver) -> Path:
    path = tmp_path / "outbox.yaml"
    path.write_text(CONFIG.format(url=receiver.url))
    return path


def killed_itself(server: Server) -> None:
    code = wait_for(lambda: server.proc.poll() if server.proc else None, 60, what="the kill")
    assert code == -9, server.log()
    server.client.close()


def the_claim_runs_out(database_url: str, job_id: int) -> dict[str, object]:
    """The job's one notification, still pending; its claim moved into the past."""
    store = Store(database_url)
    try:
        items, total = store.monitor.notifications(1, 10, job_id=job_id)
        assert total == 1, items
        assert (items[0]["status"], items[0]["attempts"]) == ("pending", 0), items
        lapsed = utcnow() - timedelta(seconds=1)
        with store.engine.begin() as conn:
            conn.execute(update(notifications).values(claimed_until=lapsed))
        return items[0]
    finally:
        store.close()


def delivered(database_url: str, job_id: int) -> dict[str, object]:
    """The notification once recorded as sent; and the job's invariants."""
    store = Store(database_url)
    try:
        found = wait_for(
            lambda: [
                item
                for item in store.monitor.notifications(1, 10, job_id=job_id)[0]
                if item["status"] == "sent"
            ],
            timeout=60,
            what="the notification to be recorded as sent",
        )
        check_jobs(store, [job_id])
        return found[0]
    finally:
        store.close()


def fail_a_job_under(launch: Launcher, database_url: str, config: Path, point: str) -> int:
    """Start a server armed at ``point``, fail a job, wait for the kill; the job's id."""
    server = launch(database_url, config=config, env={"JOBYARD_FAULT": point})
    job_id: int = server.submit("fails")["id"]
    killed_itself(server)
    return job_id


@pytest.mark.parametrize(("point", "copies"), [("outbox.send", 1), ("outbox.sent", 2)])
def test_a_notification_outlives_a_kill_while_it_is_sent(
    database_url: str,
    launch: Launcher,
    config: Path,
    receiver: HookReceiver,
    point: str,
    copies: int,
) -> None:
    job_id = fail_a_job_under(launch, database_url, config, point)
    assert len(receiver.accepted()) == copies - 1  # before the POST: none; after: one
    item = the_claim_runs_out(database_url, job_id)
    again = launch(database_url, config=config)
    sent = delivered(database_url, job_id)
    assert (sent["id"], sent["attempts"]) == (item["id"], 1), sent
    hooks = receiver.accepted()
    assert len(hooks) == copies, hooks  # at least once; a repeat only after an unrecorded send
    bodies = [json.loads(hook.body) for hook in hooks]
    assert {body["delivery"] for body in bodies} == {str(item["id"])}  # the same delivery id
    assert {body["event"] for body in bodies} == {"failed"}
    assert again.job(job_id)["state"] == "failed"


def test_a_taken_message_is_marked_for_its_own_channels_timeout(
    database_url: str, launch: Launcher, tmp_path: Path, receiver: HookReceiver
) -> None:
    """Another channel's far longer timeout does not hold the message a dead server took
    for that long: its mark is its channel's timeout (2 s) plus a minute."""
    path = tmp_path / "two-channels.yaml"
    slow = "    slow:\n      type: webhook\n      url: {url}\n      timeout: 10m\n  rules:\n"
    path.write_text(CONFIG.replace("  rules:\n", slow).format(url=receiver.url))
    job_id = fail_a_job_under(launch, database_url, path, "outbox.send")
    store = Store(database_url)
    try:
        with store.engine.connect() as conn:
            query = select(notifications.c.claimed_until, notifications.c.created_at)
            until, created = conn.execute(query.where(notifications.c.job_id == job_id)).one()
    finally:
        store.close()
    assert until is not None
    assert timedelta(seconds=62) <= until - created < timedelta(seconds=90)
