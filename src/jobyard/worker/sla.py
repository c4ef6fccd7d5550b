"""Budgets of a running job (SLA): which are exceeded, each reported once.

Pure: :class:`SlaWatch` is fed what the job has done so far (runtime, output
bytes, its own metrics) and answers the budgets that this reading breaks for
the first time. The worker's job run feeds it while the job runs and once more
with the final readings when it ended (a batch job often reports its figures
last), records an ``sla`` event per breach and, with ``on_breach: kill``, stops
the job if it still runs.

``expected: auto`` compares the runtime with what the type usually takes: the
95th percentile of its last successful runs (:func:`baseline`), times
``factor``. With fewer than :data:`MIN_RUNS` successes there is nothing to learn
from yet, and that budget is not watched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobyard.models import Sla
from jobyard.units import duration, size

MIN_RUNS = 5  # successes needed before ``expected: auto`` has a baseline
HISTORY = 50  # successes looked at, newest first


@dataclass(frozen=True)
class Breach:
    """One budget exceeded: ``budget`` is max_runtime | max_output | max_data | expected."""

    budget: str
    limit: float
    value: float
    kill: bool
    metric: str | None = None
    # Reported by an earlier attempt: this one is stopped all the same (``kill``), but
    # the breach is not recorded or notified again (once per job and budget).
    reported: bool = False

    def describe(self) -> str:
        what = {
            "max_runtime": f"ran {duration(self.value)}, budget {duration(self.limit)}",
            "max_output": f"wrote {size(self.value)}, budget {size(self.limit)}",
            "max_data": f"reported {self.metric} = {self.value:g}, budget {self.limit:g}",
            "expected": f"ran {duration(self.value)}, usually done within {duration(self.limit)}",
        }[self.budget]
        if (by := excess(self.budget, self.value, self.limit)) is not None:
            what += f", exceeded by {by}"  # "2.0 s, budget 2.0 s" reads as no breach
        return f"SLA breach ({self.budget}): {what}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "budget": self.budget,
            "limit": self.limit,
            "value": self.value,
            "action": "kill" if self.kill else "notify",
        }
        if self.metric is not None:
            data["metric"] = self.metric
        return data


def amount(budget: str, value: float) -> str:
    """A figure of ``budget`` for people: a size for ``max_output``, a number of the
    metric's units for ``max_data``, a duration for the others."""
    if budget == "max_output":
        return size(value)
    return f"{value:g}" if budget == "max_data" else duration(value)


def excess(budget: str, value: float, limit: float) -> str | None:
    """By how much ``value`` went over ``limit`` where both read the same (else None)."""
    if amount(budget, value) != amount(budget, limit):
        return None
    return amount(budget, value - limit)


def overrun(budget: str, value: float, limit: float) -> str:
    """How far ``value`` went over ``limit``: ``25 min 00 s > 20 min 00 s``, or where both
    read the same, by how much (``3.0 s exceeded by 27 ms``)."""
    allowed = amount(budget, limit)
    if (by := excess(budget, value, limit)) is None:
        return f"{amount(budget, value)} > {allowed}"
    return f"{allowed} exceeded by {by}"


def baseline(runtimes: Sequence[float]) -> float | None:
    """The p95 of recent successful runtimes (nearest rank), or None with too few."""
    if len(runtimes) < MIN_RUNS:
        return None
    ordered = sorted(runtimes)
    rank = max(math.ceil(0.95 * len(ordered)), 1)
    return ordered[rank - 1]


class SlaWatch:
    """Checks one attempt's readings against its budgets; each breaches at most once.

    ``reported``: the budgets an earlier attempt of the job broke. Breaking one again
    is not news (no :class:`Breach` for a budget that only notifies), but a kill budget
    still stops this attempt: a retry gets the same budget, not none.
    """

    def __init__(
        self, sla: Sla, *, expected: float | None = None, reported: frozenset[str] = frozenset()
    ) -> None:
        self.sla = sla
        self.expected_limit = None if expected is None else expected * sla.factor
        self._reported = reported
        self._breached: set[str] = set()

    @property
    def watching(self) -> bool:
        return any(limit is not None for limit in self._limits().values())

    def check(
        self, runtime: float, output_bytes: int, metrics: Mapping[str, Any], *, ended: bool = False
    ) -> list[Breach]:
        """The budgets broken for the first time by these readings.

        With ``ended`` they are the final readings of a job that is over: a breach
        only warns, there is nothing left to kill.
        """
        values = {
            "max_runtime": runtime,
            "max_output": float(output_bytes),
            "max_data": _number(metrics.get(self.sla.max_data[0])) if self.sla.max_data else None,
            "expected": runtime,
        }
        found = []
        for budget, limit in self._limits().items():
            value = values[budget]
            if limit is None or value is None or budget in self._breached or value <= limit:
                continue
            self._breached.add(budget)
            metric = self.sla.max_data[0] if budget == "max_data" and self.sla.max_data else None
            # A learned baseline only warns: killing on a guess would be too harsh.
            kill = self.sla.on_breach == "kill" and budget != "expected" and not ended
            reported = budget in self._reported
            if reported and not kill:
                continue
            found.append(Breach(budget, limit, value, kill, metric, reported))
        return found

    def _limits(self) -> dict[str, float | None]:
        sla = self.sla
        return {
            "max_runtime": sla.max_runtime,
            "max_output": None if sla.max_output is None else float(sla.max_output),
            "max_data": sla.max_data[1] if sla.max_data else None,
            "expected": self.expected_limit,
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
