"""Which NOTIFY payloads wake which worker."""

from __future__ import annotations

from jobyard.events.wakeups import EVERYTHING, NOTHING, Wakeup, wakeup_for

WORK = Wakeup(work=True)


def test_a_queued_job_wakes_only_the_workers_of_its_queue() -> None:
    assert wakeup_for("q:a", "w1", ["a", "b"]) == WORK
    assert wakeup_for("q:c", "w1", ["a", "b"]) == NOTHING
    assert wakeup_for("q:c", "w1", None) == WORK  # serves every queue


def test_a_job_needing_tags_wakes_only_the_workers_that_have_them() -> None:
    gpu = ["", "gpu"]
    assert wakeup_for("t:gpu:a", "w1", ["a"], gpu) == WORK
    assert wakeup_for("t:gpu:a", "w1", ["a"]) == NOTHING  # no tags: only untagged jobs
    assert wakeup_for("t:gpu:a", "w1", ["b"], gpu) == NOTHING
    assert wakeup_for("t:big,gpu:a", "w1", None, gpu) == NOTHING
    assert wakeup_for("t:gpu:a:b", "w1", ["a:b"], gpu) == WORK  # a route holds no ':'


def test_controls_and_drains_wake_only_the_worker_named() -> None:
    assert wakeup_for("c:w1", "w1", ["a"]) == Wakeup(controls=True)
    assert wakeup_for("c:w2", "w1", None) == NOTHING
    assert wakeup_for("d:w1", "w1", ["a"]) == Wakeup(drain=True)
    assert wakeup_for("d:w2", "w1", None) == NOTHING


def test_anything_unclear_wakes_for_everything() -> None:
    for payload in (None, "", "drain", "x:w1", "q:", "q:" + "a" * 1000, "t:gpu", "t:gpu:"):
        assert wakeup_for(payload, "w1", ["a"]) == EVERYTHING, payload
    assert not NOTHING
