"""Ad-hoc dependencies between jobs (afterok / afternotok / afterany), on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import Server, shared_server

server = shared_server()


def after(job: dict[str, Any], on: str = "succeeded") -> list[dict[str, Any]]:
    return [{"job": job["id"], "on": on}]


def test_a_job_waits_for_its_dependency_then_runs(server: Server) -> None:
    upstream = server.submit("echo", args={"text": "first"}, hold=True)
    downstream = server.submit("echo", args={"text": "second"}, depends_on=after(upstream))
    assert downstream["state"] == "waiting"
    waits_for = [{"job": upstream["id"], "on": "succeeded", "state": "held"}]
    assert downstream["depends_on"] == waits_for  # the submit's answer says it too
    assert server.job(downstream["id"])["depends_on"] == waits_for
    key = f"k-{downstream['id']}"
    first = server.submit(
        "echo", args={"text": "k"}, depends_on=after(upstream), idempotency_key=key
    )
    again = server.submit("echo", expect=200, args={"text": "k"}, idempotency_key=key)
    assert again["id"] == first["id"]
    assert again["depends_on"] == waits_for  # the first job's, whatever the repeat said
    server.act(upstream["id"], "start", expect=200)
    server.wait_state(upstream["id"], "succeeded")
    done = server.wait_state(downstream["id"], "succeeded")
    assert done["started_at"] >= server.job(upstream["id"])["finished_at"]


def test_conditions_that_can_never_be_met_end_upstream_failed(server: Server) -> None:
    good = server.submit("echo", args={"text": "ok"})
    on_failure = server.submit("echo", args={"text": "x"}, depends_on=after(good, "failed"))
    on_any = server.submit("echo", args={"text": "y"}, depends_on=after(good, "finished"))
    blocked = server.wait_state(on_failure["id"], "upstream_failed")
    assert blocked["reason"] == "upstream_failed"
    assert str(good["id"]) in blocked["error"]
    server.wait_state(on_any["id"], "succeeded")
    # a dependency that already ended the wrong way blocks at once
    late = server.submit("echo", args={"text": "z"}, depends_on=after(good, "failed"))
    assert late["state"] == "upstream_failed"
    assert late["reason"] == "upstream_failed"  # as if it had been blocked by a settle
    assert late["error"] == f"dependency {good['id']} ended succeeded"
    assert late["finished_at"] is not None


def test_a_failure_blocks_the_chain_and_a_fixed_restart_unblocks_it(server: Server) -> None:
    broken = server.submit("fail", args={"code": 3})
    middle = server.submit("echo", args={"text": "middle"}, depends_on=after(broken))
    last = server.submit("echo", args={"text": "last"}, depends_on=after(middle))
    on_failure = server.submit("echo", args={"text": "alarm"}, depends_on=after(broken, "failed"))
    server.wait_state(broken["id"], "failed")
    server.wait_state(middle["id"], "upstream_failed")
    server.wait_state(last["id"], "upstream_failed")
    server.wait_state(on_failure["id"], "succeeded")

    response = server.client.post(
        f"/api/v1/jobs/{broken['id']}/restart", json={"args": {"code": 0}}
    )
    assert response.status_code == 201, response.text
    fixed = response.json()
    server.wait_state(fixed["id"], "succeeded")
    assert server.wait_state(middle["id"], "succeeded")["error"] is None
    server.wait_state(last["id"], "succeeded")
    assert server.job(middle["id"])["depends_on"][0]["job"] == fixed["id"]


def test_bad_dependencies_are_refused_and_removed_ones_block(server: Server) -> None:
    missing = server.client.post(
        "/api/v1/jobs",
        json={"type": "echo", "args": {"text": "x"}, "depends_on": [{"job": 999999}]},
    )
    assert missing.status_code == 422
    assert missing.json()["errors"] == [
        {"field": "depends_on.0.job", "message": "no job with id 999999"}
    ]
    # Every bad field at once: the unknown dependency hid the arguments' and the type's.
    both = server.client.post(
        "/api/v1/jobs",
        json={"type": "sleep", "args": {"seconds": "soon"}, "depends_on": [{"job": 999999}]},
    )
    assert [e["field"] for e in both.json()["errors"]] == ["depends_on.0.job", "args.seconds"]
    unknown = server.client.post(
        "/api/v1/jobs", json={"type": "nope", "depends_on": [{"job": 999999}, {"job": 999999}]}
    )
    assert [e["field"] for e in unknown.json()["errors"]] == [
        "depends_on.0.job",
        "depends_on.1.job",
        "type",
    ]
    bad = server.client.post(
        "/api/v1/jobs",
        json={"type": "echo", "args": {"text": "x"}, "depends_on": [{"job": 1, "on": "maybe"}]},
    )
    assert bad.status_code == 422

    upstream = server.submit("echo", args={"text": "u"}, hold=True)
    held = server.submit("echo", args={"text": "h"}, hold=True, depends_on=after(upstream))
    waiting = server.submit("echo", args={"text": "w"}, depends_on=after(upstream))
    assert held["state"] == "held"
    assert server.act(held["id"], "start", expect=200).json()["state"] == "waiting"
    assert server.client.delete(f"/api/v1/jobs/{upstream['id']}?force=true").status_code == 204
    server.wait_state(held["id"], "upstream_failed")
    error = server.wait_state(waiting["id"], "upstream_failed")["error"]
    assert error == f"dependency {upstream['id']} ended removed"  # removed, not killed


@pytest.mark.parametrize("live", [False, True], ids=["pending", "running"])
def test_a_forced_removal_blocks_its_dependents_whatever_they_wait_for(
    server: Server, live: bool
) -> None:
    """A forced removal killed the job first: ended ``killed``, it met its dependents'
    ``failed`` and ``finished`` conditions before the removal was stored (a pending job's
    always, a running one's when its worker's end won the race), and they ran."""
    conditions = ("succeeded", "failed", "finished")
    for _ in range(3 if live else 1):  # a running job's end raced the removal
        if live:
            upstream = server.submit("sleep", args={"seconds": 60})
            server.wait_state(upstream["id"], "running")
        else:
            upstream = server.submit("echo", args={"text": "u"}, hold=True)
        waiting = [
            server.submit("echo", args={"text": on}, depends_on=after(upstream, on))
            for on in conditions
        ]
        held = server.submit(
            "echo", args={"text": "h"}, hold=True, depends_on=after(upstream, "finished")
        )
        removed = server.client.delete(f"/api/v1/jobs/{upstream['id']}?force=true")
        assert removed.status_code == 204, removed.text
        why = f"dependency {upstream['id']} ended removed"
        for on, job in zip(conditions, waiting, strict=True):
            ended = server.wait_state(job["id"], "upstream_failed", "succeeded")
            assert (ended["state"], ended["error"]) == ("upstream_failed", why), on
        started = server.act(held["id"], "start", expect=200).json()
        assert (started["state"], started["error"]) == ("upstream_failed", why)


def test_a_met_dependency_stays_met_when_its_upstream_is_removed(server: Server) -> None:
    """Retention (or a user) removed the upstream of a held job whose dependency was met:
    starting it ended it upstream_failed ("dependency ended removed"), and its restart
    was a 422 ("no job with id")."""
    upstream = server.submit("echo", args={"text": "u"})
    server.wait_state(upstream["id"], "succeeded")
    held = server.submit("echo", args={"text": "h"}, hold=True, depends_on=after(upstream))
    ran = server.submit("echo", args={"text": "r"}, depends_on=after(upstream))
    server.wait_state(ran["id"], "succeeded")
    assert server.client.delete(f"/api/v1/jobs/{upstream['id']}").status_code == 204
    assert server.act(held["id"], "start", expect=200).json()["state"] in (
        "queued",
        "running",
        "succeeded",
    )
    assert server.wait_state(held["id"], "succeeded", "upstream_failed")["state"] == "succeeded"
    again = server.client.post(f"/api/v1/jobs/{ran['id']}/restart")
    assert again.status_code == 201, again.text
    assert server.wait_state(again.json()["id"], "succeeded")["depends_on"] == []
    # Blocked by another dependency, then that one fixed: it stayed upstream_failed.
    first = server.submit("echo", args={"text": "first"})
    broken = server.submit("fail", args={"code": 3}, hold=True)
    both = after(first) + after(broken)
    blocked = server.submit("echo", args={"text": "both"}, depends_on=both)
    server.wait_state(first["id"], "succeeded")
    server.act(broken["id"], "start", expect=200)
    server.wait_state(blocked["id"], "upstream_failed")
    assert server.client.delete(f"/api/v1/jobs/{first['id']}").status_code == 204
    fixed = server.client.post(f"/api/v1/jobs/{broken['id']}/restart", json={"args": {"code": 0}})
    assert fixed.status_code == 201, fixed.text
    assert server.job(blocked["id"])["state"] != "upstream_failed"  # reopened by the restart
    assert server.wait_state(blocked["id"], "succeeded")["error"] is None


@pytest.mark.parametrize("action", ["start", "resume"])
def test_a_held_job_started_after_its_dependency_failed_ends_naming_it(
    server: Server, action: str
) -> None:
    upstream = server.submit("echo", args={"text": "u"}, hold=True)
    held = server.submit("echo", args={"text": "h"}, depends_on=after(upstream, "failed"))
    assert server.act(held["id"], "pause", expect=200).json()["state"] == "held"
    server.act(upstream["id"], "start", expect=200)
    server.wait_state(upstream["id"], "succeeded")
    assert server.job(held["id"])["state"] == "held"  # held: it waits for its user
    ended = server.act(held["id"], action, expect=200).json()
    error = f"dependency {upstream['id']} ended succeeded"
    assert (ended["state"], ended["reason"], ended["error"]) == (
        "upstream_failed",
        "upstream_failed",
        error,
    )
    assert server.job(held["id"])["error"] == error  # stored so, not as a kill


def test_a_job_named_twice_as_a_dependency_is_refused_and_nothing_is_stored(
    server: Server,
) -> None:
    upstream = server.submit("echo", args={"text": "u"}, hold=True)
    twice = [{"job": upstream["id"]}, {"job": upstream["id"], "on": "failed"}]
    before = server.client.get("/api/v1/jobs").json()["total"]
    one = server.client.post(
        "/api/v1/jobs", json={"type": "echo", "args": {"text": "x"}, "depends_on": twice}
    )
    assert one.status_code == 422, one.text
    assert one.json()["errors"][0]["field"] == "depends_on.1.job"
    good = {"type": "echo", "args": {"text": "y"}}
    batch = server.client.post(
        "/api/v1/jobs/batch", json={"jobs": [good, {**good, "depends_on": twice}]}
    )
    assert batch.status_code == 422, batch.text
    assert server.client.get("/api/v1/jobs").json()["total"] == before


def test_a_job_that_waited_for_a_job_and_its_restart_restarts(server: Server) -> None:
    """Its restart waits for the newest of the chain once, not twice, on the condition
    given for that job itself."""
    first = server.submit("echo", args={"text": "first"})
    server.wait_state(first["id"], "succeeded")
    again = server.client.post(f"/api/v1/jobs/{first['id']}/restart").json()
    both = [*after(first, "finished"), *after(again, "succeeded")]
    waited = server.submit("echo", args={"text": "waited"}, depends_on=both)
    server.wait_state(waited["id"], "succeeded")
    response = server.client.post(f"/api/v1/jobs/{waited['id']}/restart")
    assert response.status_code == 201, response.text
    assert response.json()["depends_on"] == [
        {"job": again["id"], "on": "succeeded", "state": "succeeded"}
    ]
