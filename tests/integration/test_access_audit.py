"""The audit log: a sequence of changes by several people, read back entry by entry.

One server for the module; :func:`story` plays the sequence once, and the tests
read what it left behind (the whole story, its filters, its pages).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.harness import Server, shared_server
from tests.users import PASSWORD, add_user, assert_problem, client, new_token, unique

server = shared_server(backends=["sqlite"])

Row = tuple[str, str, str, str]  # actor, action, target, outcome


@dataclass(frozen=True)
class Story:
    since: datetime  # just before its first step
    expected: list[Row]  # oldest first
    operator: str
    admin: str
    viewer: str


def audit(server: Server, **query: Any) -> dict[str, Any]:
    response = server.client.get("/api/v1/audit", params={"per_page": 500, **query})
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def rows(items: list[dict[str, Any]]) -> list[Row]:
    """The entries (newest first, as listed) as rows, oldest first."""
    return [(e["actor"], e["action"], e["target"], e["outcome"]) for e in reversed(items)]


@pytest.fixture(scope="module")
def story(server: Server) -> Iterator[Story]:
    operator, admin, viewer = unique("op"), unique("adm"), unique("view")
    for name, role in ((operator, "operator"), (admin, "admin"), (viewer, "viewer")):
        add_user(server, name, role)
    with ExitStack() as stack:
        op, adm, view = (
            stack.enter_context(client(server, (name, PASSWORD)))
            for name in (operator, admin, viewer)
        )
        since = datetime.now(UTC)
        expected = play(server, op, adm, view, (operator, admin, viewer))
        yield Story(since, expected, operator, admin, viewer)


def play(
    server: Server,
    op: httpx.Client,
    adm: httpx.Client,
    view: httpx.Client,
    names: tuple[str, str, str],
) -> list[Row]:
    """Make the changes; the rows they should leave in the log."""
    operator, admin, viewer = names
    expected: list[Row] = []

    def did(actor: str, action: str, target: str, outcome: str = "ok") -> None:
        expected.append((actor, action, target, outcome))

    submitted = op.post("/api/v1/jobs", json={"type": "sleep", "args": {"seconds": 60}})
    assert submitted.status_code == 201, submitted.text
    job = submitted.json()["id"]
    did(operator, "submit", f"/api/v1/jobs/{job}")
    held = {"type": "sleep", "args": {"seconds": 60}, "hold": True, "idempotency_key": unique("k")}
    first = op.post("/api/v1/jobs", json=held)
    again = op.post("/api/v1/jobs", json=held)
    assert (first.status_code, again.status_code) == (201, 200)
    did(operator, "submit", f"/api/v1/jobs/{first.json()['id']}")
    did(operator, "submit", f"/api/v1/jobs/{first.json()['id']}")  # the answer was the job
    batch = op.post("/api/v1/jobs/batch", json={"jobs": [{**held, "idempotency_key": None}] * 2})
    assert batch.status_code == 201, batch.text
    did(operator, "submit_batch", "/api/v1/jobs/batch")
    server.wait_state(job, "running")
    for action, state in (("pause", "paused"), ("resume", "running"), ("kill", "killed")):
        assert op.post(f"/api/v1/jobs/{job}/{action}").status_code in (200, 202)
        did(operator, f"{action}_job", f"/api/v1/jobs/{job}/{action}")
        server.wait_state(job, state)
    for action in ("pause", "resume"):
        assert op.post(f"/api/v1/queues/limited/{action}").status_code == 200
        did(operator, f"{action}_queue", f"/api/v1/queues/limited/{action}")

    token = new_token(op)["id"]
    did(operator, "create_token", f"/api/v1/tokens/{token}")
    assert op.delete(f"/api/v1/tokens/{token}").status_code == 200
    did(operator, "revoke_token", f"/api/v1/tokens/{token}")

    newcomer = unique("new@comer")
    body = {"name": newcomer, "role": "viewer", "password": PASSWORD}
    assert adm.post("/api/v1/users", json=body).status_code == 201
    did(admin, "add_user", f"/api/v1/users/{newcomer}")
    assert adm.delete(f"/api/v1/users/{newcomer}").status_code == 204
    did(admin, "remove_user", f"/api/v1/users/{newcomer}")

    kind = unique("greet")
    definition = {"name": kind, "command": ["echo", "hello"]}
    assert adm.post("/api/v1/job-types", json=definition).status_code == 201
    did(admin, "create_type", f"/api/v1/job-types/{kind}")
    assert adm.delete(f"/api/v1/job-types/{kind}").status_code == 204
    did(admin, "delete_type", f"/api/v1/job-types/{kind}")

    assert_problem(view.post("/api/v1/jobs", json={"type": "echo"}), 403)
    did(viewer, "submit", "/api/v1/jobs", "denied")
    assert_problem(view.post(f"/api/v1/jobs/{job}/restart", json={}), 403)
    did(viewer, "restart_job", f"/api/v1/jobs/{job}/restart", "denied")
    with client(server) as browser:
        wrong = {"username": viewer, "password": "not-the-password"}
        assert_problem(browser.post("/login", json=wrong), 401)
        did(viewer, "login", f"user {viewer}", "failed")
        right = {"username": viewer, "password": PASSWORD}
        assert browser.post("/login", json=right).status_code == 200
        did(viewer, "login", f"user {viewer}")
    return expected


def test_the_log_tells_the_story_entry_by_entry(server: Server, story: Story) -> None:
    page = audit(server, since=story.since.isoformat())
    assert rows(page["items"]) == story.expected
    assert page["total"] == len(story.expected)


def test_an_entry_says_how_and_from_where(server: Server, story: Story) -> None:
    items = audit(server, since=story.since.isoformat())["items"]
    by_action = {(e["actor"], e["action"], e["outcome"]): e for e in items}
    submit = by_action[(story.operator, "submit", "ok")]
    assert (submit["via"], submit["address"]) == ("password", "127.0.0.1")
    assert submit["detail"] == {"method": "POST", "status": 201}
    denied = by_action[(story.viewer, "submit", "denied")]
    assert denied["detail"] == {"method": "POST", "status": 403}
    assert by_action[(story.viewer, "login", "ok")]["via"] == "session"
    made = by_action[(story.operator, "create_token", "ok")]
    assert "jy_" not in str(made)  # the secret is never logged
    times = [datetime.fromisoformat(e["at"]) for e in reversed(items)]
    assert times == sorted(times)
    assert all(story.since <= at <= datetime.now(UTC) for at in times)


@pytest.mark.parametrize(
    ("field", "query"),
    [
        ("actor", lambda s: {"actor": s.operator}),
        ("actor", lambda s: {"actor": f"{s.admin},{s.viewer}"}),
        ("action", lambda s: {"action": "kill_job"}),
        ("action", lambda s: {"action": ["add_user", "remove_user"]}),
        ("outcome", lambda s: {"outcome": "denied"}),
        ("outcome", lambda s: {"outcome": "failed"}),
    ],
)
def test_filters_keep_the_matching_entries(
    server: Server, story: Story, field: str, query: Any
) -> None:
    wanted = query(story)
    values = wanted[field] if isinstance(wanted[field], list) else wanted[field].split(",")
    index = {"actor": 0, "action": 1, "outcome": 3}[field]
    expected = [row for row in story.expected if row[index] in values]
    assert expected  # the story has some of each
    page = audit(server, since=story.since.isoformat(), **wanted)
    assert rows(page["items"]) == expected
    assert page["total"] == len(expected)


def test_since_and_until_cut_the_log_in_time(server: Server, story: Story) -> None:
    items = audit(server, since=story.since.isoformat())["items"]
    middle = items[len(items) // 2]
    later = audit(server, since=middle["at"])["items"]
    assert rows(later) == rows(items)[len(items) - len(later) :]
    assert later[-1]["id"] == middle["id"]
    earlier = audit(server, since=story.since.isoformat(), until=middle["at"])["items"]
    assert rows(earlier) + rows(later) == rows(items)


def test_pages_walk_the_whole_log_newest_first(server: Server, story: Story) -> None:
    since = story.since.isoformat()
    whole = audit(server, since=since)["items"]
    walked: list[dict[str, Any]] = []
    for number in range(1, 100):
        page = audit(server, since=since, page=number, per_page=4)
        assert (page["page"], page["per_page"], page["total"]) == (number, 4, len(whole))
        if not page["items"]:
            break
        walked += page["items"]
    assert walked == whole
    assert [e["id"] for e in whole] == sorted((e["id"] for e in whole), reverse=True)


def test_the_log_is_for_admins_only(server: Server, story: Story) -> None:
    for name in (story.viewer, story.operator):
        with client(server, (name, PASSWORD)) as http:
            assert_problem(http.get("/api/v1/audit"), 403)
    with client(server, (story.admin, PASSWORD)) as http:
        assert http.get("/api/v1/audit").status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        {"page": 0},
        {"per_page": 501},
        {"since": "yesterday"},
        {"since": "0"},  # no Unix times
        {"since": "2026-01-01T00:00:00"},
        {"since": "0001-01-01T00:00:00+05:00"},  # before year 1 in UTC
        {"until": "9999-12-31T23:00:00-05:00"},  # after year 9999 in UTC
        {"outcome": "bogus"},
    ],
)
def test_a_bad_audit_query_is_a_422(server: Server, query: dict[str, Any]) -> None:
    body = assert_problem(server.client.get("/api/v1/audit", params=query), 422)
    assert body["errors"][0]["field"] == next(iter(query))
