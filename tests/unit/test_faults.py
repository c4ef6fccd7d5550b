"""The fault-injection switch: read once, unknown points refused."""

from __future__ import annotations

import pytest

from jobyard import faults


def test_a_point_fires_at_its_first_or_its_nth_reach() -> None:
    assert faults._armed("end.after_commit") == ("end.after_commit", 1)
    assert faults._armed("claim.before_commit@3") == ("claim.before_commit", 3)
    assert faults._armed("") is None
    assert faults._armed(None) is None


def test_an_unknown_point_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown point 'end\.before'"):
        faults._armed("end.before")


def test_reaching_a_point_that_is_not_armed_returns() -> None:
    faults.reach("end.after_commit")  # the tests' own process is not armed: it lives on
