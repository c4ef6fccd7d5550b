"""Routing tags and cluster-wide limits as pure data: routes, subsets, the pick, worker states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from jobyard.config import QueueConfig
from jobyard.jobtypes.spec import JobTypeInvalid, parse_job_type
from jobyard.limits import Limit, Scope, limits_of, pick
from jobyard.models import WorkerInfo
from jobyard.roster import WorkerState, worker_state
from jobyard.routing import MAX_WORKER_TAGS, TagsInvalid, check_tags, route_of, routes_for
from jobyard.settings import Settings

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_a_route_is_the_sorted_tags_without_duplicates() -> None:
    assert route_of([]) == ""
    assert route_of(["linux", "big", "linux"]) == "big,linux"


def test_a_worker_runs_the_routes_of_every_subset_of_its_tags() -> None:
    assert routes_for(None) == [""]
    assert sorted(routes_for(["linux", "big"])) == ["", "big", "big,linux", "linux"]
    routes = routes_for([f"t{i}" for i in range(MAX_WORKER_TAGS)])
    assert len(routes) == 2**MAX_WORKER_TAGS == len(set(routes))
    assert route_of(["t7", "t0", "t3"]) in routes


def test_tags_are_checked() -> None:
    assert check_tags(["b", "a", "b"]) == ("a", "b")
    with pytest.raises(TagsInvalid, match="invalid tag 'a,b'"):
        check_tags(["a,b"])
    with pytest.raises(TagsInvalid, match=f"at most {MAX_WORKER_TAGS} tags"):
        check_tags([f"t{i}" for i in range(MAX_WORKER_TAGS + 1)])


def test_a_job_type_carries_its_tags_into_the_spec_and_its_limit_to_the_api() -> None:
    job_type = parse_job_type(
        "t", {"command": ["true"], "tags": ["linux", "big"], "max_running": 2}
    )
    assert job_type.resolve({}).tags == ("big", "linux")
    assert job_type.public_dict()["tags"] == ["big", "linux"]
    assert job_type.public_dict()["max_running"] == 2
    assert parse_job_type("u", {"command": ["true"]}).resolve({}).tags == ()


@pytest.mark.parametrize(
    ("definition", "field"),
    [({"tags": ["no spaces"]}, "tags"), ({"max_running": 0}, "max_running")],
)
def test_bad_tags_and_limits_are_refused(definition: dict[str, object], field: str) -> None:
    with pytest.raises(JobTypeInvalid) as info:
        parse_job_type("t", {"command": ["true"], **definition})
    assert [error["field"] for error in info.value.errors] == [field]


def test_worker_tags_and_drain_timeout_come_from_the_environment() -> None:
    settings = Settings.from_env({"JOBYARD_TAGS": "linux, big", "JOBYARD_DRAIN_TIMEOUT": "1m"})
    assert (settings.tags, settings.drain_timeout) == (["big", "linux"], 60.0)
    assert Settings.from_env({}).tags is None


def test_the_limits_of_a_configuration() -> None:
    queues = {"default": QueueConfig(), "export": QueueConfig(max_running=2)}
    types = {"a": parse_job_type("a", {"command": ["true"], "max_running": 1})}
    assert limits_of(queues, types) == [
        Limit(Scope.QUEUE, "export", 2),
        Limit(Scope.TYPE, "a", 1),
    ]


@dataclass(frozen=True)
class Row:
    id: int
    queue: str
    type: str


def test_the_pick_takes_jobs_in_order_while_their_scopes_have_slots() -> None:
    rows = [Row(1, "q", "a"), Row(2, "q", "b"), Row(3, "q", "a"), Row(4, "other", "b")]
    free = {(Scope.QUEUE, "q"): 2, (Scope.TYPE, "b"): 1}
    # 1 takes a q slot, 2 the other q slot and the only b slot; 3 finds q full, 4 finds b full.
    assert pick(rows, free) == [1, 2]
    assert free == {(Scope.QUEUE, "q"): 0, (Scope.TYPE, "b"): 0}
    assert pick(rows, {}) == [1, 2, 3, 4]


def worker(**changes: object) -> WorkerInfo:
    info = WorkerInfo("w", "host-a", 1, "1.0", ["*"], 4, T0, T0, lease_timeout=30.0)
    return WorkerInfo(**{**info.__dict__, **changes})


def test_a_worker_is_lost_when_its_heartbeat_is_older_than_its_lease() -> None:
    assert worker_state(worker(), T0 + timedelta(seconds=30)) is WorkerState.RUNNING
    assert worker_state(worker(), T0 + timedelta(seconds=31)) is WorkerState.LOST
    assert worker_state(worker(state="draining"), T0) is WorkerState.DRAINING
    assert worker_state(worker(drain_requested_at=T0), T0) is WorkerState.DRAINING
