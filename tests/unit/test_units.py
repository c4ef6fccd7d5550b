"""How durations and sizes read: one form each, rolled over to the next unit where the
rounded figure reaches it."""

from __future__ import annotations

import pytest

from jobyard.units import duration, size
from jobyard.worker.sla import Breach, overrun


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "—"),
        (0, "0 ms"),
        (0.0004, "0 ms"),
        (0.0005, "1 ms"),  # half up, not to even
        (0.01, "10 ms"),
        (0.9994, "999 ms"),
        (0.9995, "1.0 s"),
        (4.24, "4.2 s"),
        (4.25, "4.3 s"),
        (59.94, "59.9 s"),
        (59.96, "1 min 00 s"),
        (65.4, "1 min 05 s"),
        (3599.4, "59 min 59 s"),
        (3599.6, "1 h 00 min"),
        (7800, "2 h 10 min"),
        (7829.9, "2 h 10 min"),
        (7830, "2 h 11 min"),
        (172_769, "47 h 59 min"),
        (172_771, "2 d 0 h"),
        (3 * 86400 + 4 * 3600, "3 d 4 h"),
        (-5, "-5.0 s"),
    ],
)
def test_a_duration_rolls_over_where_its_rounded_figure_reaches_the_next_unit(
    seconds: float | None, shown: str
) -> None:
    assert duration(seconds) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.4, "0 s"),
        (59.4, "59 s"),
        (59.6, "1 min"),
        (3569, "59 min"),
        (3571, "1 h 00 min"),
        (172_771, "2 d 0 h"),
    ],
)
def test_a_coarse_duration_drops_the_fractions(seconds: float, shown: str) -> None:
    assert duration(seconds, coarse=True) == shown


def test_the_compact_form_is_the_same_figure_without_spaces() -> None:
    for seconds in (0.05, 4.24, 59.96, 65.4, 3599.6, 172_771):
        assert duration(seconds, compact=True) == duration(seconds).replace(" ", "")
    assert duration(65.4, compact=True) == "1min05s"


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (None, "—"),
        (0, "0 B"),
        (999, "999 B"),
        (999.5, "1.0 kB"),
        (1500, "1.5 kB"),
        (999_949, "999.9 kB"),
        (999_950, "1.0 MB"),
        (500_000_000, "500.0 MB"),  # a budget of 500MB reads as written
        (1_048_576, "1.0 MB"),
        (999_960_000_000, "1.0 TB"),
        (1.5e15, "1500.0 TB"),
        (-3, "-3 B"),
    ],
)
def test_a_size_is_in_decimal_units_and_rolls_over_like_a_duration(
    count: float | None, shown: str
) -> None:
    assert size(count) == shown


@pytest.mark.parametrize(
    ("budget", "value", "limit", "shown"),
    [
        ("max_output", 80_040, 50_000, "80.0 kB > 50.0 kB"),
        ("max_runtime", 1500, 1200, "25 min 00 s > 20 min 00 s"),
        ("max_runtime", 3.027, 3, "3.0 s exceeded by 27 ms"),  # both read "3.0 s"
        ("expected", 59.97, 59.96, "1 min 00 s exceeded by 10 ms"),
        ("max_data", 5000, 1000, "5000 > 1000"),
    ],
)
def test_an_overrun_reads_in_its_budgets_unit(
    budget: str, value: float, limit: float, shown: str
) -> None:
    assert overrun(budget, value, limit) == shown


def test_the_breach_the_job_log_tells_is_in_the_same_units() -> None:
    output = Breach("max_output", limit=500_000_000, value=612_000_000, kill=False)
    assert output.describe() == "SLA breach (max_output): wrote 612.0 MB, budget 500.0 MB"
    runtime = Breach("max_runtime", limit=1, value=1.2, kill=True)
    assert runtime.describe() == "SLA breach (max_runtime): ran 1.2 s, budget 1.0 s"


@pytest.mark.parametrize(
    ("breach", "told"),
    [
        (Breach("max_runtime", 2, 2.012, kill=False), "ran 2.0 s, budget 2.0 s, exceeded by 12 ms"),
        (
            Breach("expected", 2, 2.012, kill=False),
            "ran 2.0 s, usually done within 2.0 s, exceeded by 12 ms",
        ),
        (Breach("max_output", 10**9, 10**9 + 5, kill=False), "exceeded by 5 B"),
    ],
)
def test_a_breach_that_reads_as_its_budget_says_by_how_much(breach: Breach, told: str) -> None:
    assert breach.describe().endswith(told)
