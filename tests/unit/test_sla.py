"""Budgets (SLA): which readings breach, each budget once; the learned baseline."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobyard.events.records import FeedEvent, JobEvent, unmarshal
from jobyard.jobtypes.spec import JobTypeInvalid, parse_job_type
from jobyard.models import EventKind, Sla
from jobyard.notify.notifier import notification_names
from jobyard.worker.sla import MIN_RUNS, Breach, SlaWatch, baseline

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_each_budget_breaches_once_when_its_reading_passes_the_limit() -> None:
    watch = SlaWatch(Sla(max_runtime=10, max_output=100, max_data=("rows", 5)))
    assert watch.check(10, 100, {"rows": 5}) == []  # at the limit is within it
    [runtime] = watch.check(10.5, 50, {})
    assert (runtime.budget, runtime.limit, runtime.value, runtime.kill) == (
        "max_runtime",
        10,
        10.5,
        False,
    )
    assert watch.check(20, 50, {}) == []  # told once
    found = watch.check(30, 101, {"rows": 6})
    assert [(b.budget, b.metric) for b in found] == [("max_output", None), ("max_data", "rows")]
    assert "rows = 6" in found[1].describe()


def test_kill_applies_to_fixed_budgets_but_a_learned_one_only_warns() -> None:
    watch = SlaWatch(Sla(max_runtime=1, expected="auto", on_breach="kill"), expected=2.0)
    found = {b.budget: b.kill for b in watch.check(5, 0, {})}
    assert found == {"max_runtime": True, "expected": False}
    assert watch.expected_limit == 4.0  # twice the baseline by default


def test_the_final_readings_breach_once_more_but_only_warn() -> None:
    watch = SlaWatch(Sla(max_runtime=10, max_data=("rows", 1000), on_breach="kill"))
    assert watch.check(5, 0, {}) == []  # while it runs: nothing reported yet
    [rows] = watch.check(6, 0, {"rows": 5000}, ended=True)  # reported with its last line
    assert (rows.budget, rows.value, rows.limit, rows.kill) == ("max_data", 5000, 1000, False)
    assert rows.to_dict()["action"] == "notify"  # nothing was left to kill
    assert watch.check(20, 0, {"rows": 6000}, ended=True) == [
        Breach("max_runtime", 10, 20, kill=False)
    ]  # rows were told already


def test_budgets_already_breached_in_an_earlier_attempt_stay_quiet() -> None:
    watch = SlaWatch(Sla(max_runtime=1), reported=frozenset({"max_runtime"}))
    assert watch.check(100, 0, {}) == []


def test_a_kill_budget_an_earlier_attempt_broke_still_stops_this_one_once() -> None:
    budgets = Sla(max_runtime=1, max_output=10, on_breach="kill")
    watch = SlaWatch(budgets, reported=frozenset({"max_runtime"}))
    assert watch.check(0.5, 0, {}) == []
    assert watch.check(2, 0, {}) == [Breach("max_runtime", 1, 2, kill=True, reported=True)]
    assert watch.check(3, 0, {}) == []  # once per attempt
    [output] = watch.check(3, 50, {})  # a budget this job had not broken yet is news
    assert (output.budget, output.kill, output.reported) == ("max_output", True, False)
    # On the final figures there is nothing to stop, and the breach was told before.
    ended = SlaWatch(budgets, reported=frozenset({"max_runtime"}))
    assert ended.check(2, 0, {}, ended=True) == []


def test_a_metric_that_is_not_a_number_breaches_nothing() -> None:
    watch = SlaWatch(Sla(max_data=("rows", 1)))
    assert watch.check(1, 0, {"rows": "many"}) == []
    assert watch.check(1, 0, {"rows": True}) == []


@pytest.mark.parametrize(
    ("runtimes", "expected"),
    [
        ([1.0] * (MIN_RUNS - 1), None),  # too few to learn from
        ([1.0, 2.0, 3.0, 4.0, 5.0], 5.0),
        ([float(i) for i in range(1, 21)], 19.0),  # nearest rank: the 19th of 20
    ],
)
def test_the_baseline_is_the_p95_of_recent_successes(
    runtimes: list[float], expected: float | None
) -> None:
    assert baseline(runtimes) == expected


def test_job_types_take_sla_budgets_and_reject_an_empty_one() -> None:
    job_type = parse_job_type(
        "etl",
        {
            "command": ["true"],
            "sla": {
                "max_runtime": "1h",
                "max_output": "10MB",
                "max_data": {"metric": "rows", "limit": 1000},
                "on_breach": "kill",
            },
        },
    )
    spec = job_type.resolve({})
    assert spec.sla == Sla(3600.0, 10_000_000, ("rows", 1000.0), "kill")
    assert type(spec).from_dict(spec.to_dict()) == spec
    with pytest.raises(JobTypeInvalid, match="give a budget"):
        parse_job_type("etl", {"command": ["true"], "sla": {"on_breach": "kill"}})
    with pytest.raises(JobTypeInvalid, match=r"sla\.on_breach"):
        parse_job_type("etl", {"command": ["true"], "sla": {"max_runtime": 1, "on_breach": "x"}})


def event(kind: EventKind, **data: object) -> FeedEvent:
    """An event as the notifier reads it back from the log."""
    return FeedEvent(JobEvent(1, 1, unmarshal(kind, T0, data)), "etl", "default")


BREACH = {"budget": "max_runtime", "limit": 1, "value": 2, "action": "notify", "attempt": 1}
RUN = {"run_id": 1, "workflow": "nightly"}
LOST_RETRIED = {"attempt": 1, "run_at": T0.isoformat(), "restart_count": 0}


@pytest.mark.parametrize(
    ("item", "names"),
    [
        (event(EventKind.STATE, state="failed", reason="exit_code"), ["failed"]),
        (event(EventKind.STATE, state="failed", reason="worker_lost"), ["worker_lost", "failed"]),
        (
            event(EventKind.STATE, state="scheduled", reason="worker_lost", **LOST_RETRIED),
            ["worker_lost"],
        ),
        (event(EventKind.STATE, state="succeeded"), ["succeeded"]),
        (event(EventKind.STATE, state="upstream_failed"), ["upstream_failed"]),
        (event(EventKind.STATE, state="killed", reason="killed"), []),
        (event(EventKind.STATE, state="running"), []),
        (event(EventKind.STATE, state="queued", event="handed_back", reason="x", attempt=1), []),
        (event(EventKind.SLA, **BREACH), ["sla_breach"]),
        (
            event(EventKind.WORKFLOW, event="workflow_finished", state="failed", **RUN),
            ["workflow_failed"],
        ),
        (
            event(EventKind.WORKFLOW, event="workflow_finished", state="succeeded", **RUN),
            ["workflow_succeeded"],
        ),
        (event(EventKind.WORKFLOW, event="workflow_started", trigger="api", **RUN), []),
        (event(EventKind.PROGRESS, fraction=0.5, message=None), []),
    ],
)
def test_which_events_make_notifications(item: FeedEvent, names: list[str]) -> None:
    assert notification_names(item) == names
