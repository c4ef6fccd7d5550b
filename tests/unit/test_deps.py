"""When a dependency is met, pending, or can never be met."""

from __future__ import annotations

import pytest

from jobyard.dependencies import Readiness, condition_readiness, readiness
from jobyard.models import Condition
from jobyard.states import PENDING, JobState
from jobyard.store.dependencies import DependencyState

S, R = JobState, Readiness
FAILED_ENDS = (S.FAILED, S.KILLED, S.UPSTREAM_FAILED)


@pytest.mark.parametrize("state", [*sorted(PENDING), S.RUNNING, S.PAUSED])
@pytest.mark.parametrize("condition", list(Condition))
def test_an_unfinished_upstream_keeps_every_condition_pending(
    condition: Condition, state: JobState
) -> None:
    assert condition_readiness(condition, state) is R.PENDING


@pytest.mark.parametrize("state", FAILED_ENDS)
def test_a_failed_upstream(state: JobState) -> None:
    assert condition_readiness(Condition.SUCCEEDED, state) is R.IMPOSSIBLE
    assert condition_readiness(Condition.FAILED, state) is R.MET
    assert condition_readiness(Condition.FINISHED, state) is R.MET


def test_a_succeeded_upstream() -> None:
    assert condition_readiness(Condition.SUCCEEDED, S.SUCCEEDED) is R.MET
    assert condition_readiness(Condition.FAILED, S.SUCCEEDED) is R.IMPOSSIBLE
    assert condition_readiness(Condition.FINISHED, S.SUCCEEDED) is R.MET


@pytest.mark.parametrize("condition", list(Condition))
def test_a_removed_upstream_can_never_be_met(condition: Condition) -> None:
    assert condition_readiness(condition, None) is R.IMPOSSIBLE


def test_impossible_wins_then_pending_then_met() -> None:
    met = DependencyState(1, Condition.SUCCEEDED, S.SUCCEEDED)
    pending = DependencyState(2, Condition.SUCCEEDED, S.RUNNING)
    impossible = DependencyState(3, Condition.SUCCEEDED, S.KILLED)
    assert readiness([met, pending, impossible]) is R.IMPOSSIBLE
    assert readiness([met, pending]) is R.PENDING
    assert readiness([met]) is R.MET
    assert readiness([]) is R.MET
