"""What Slurm says about a job, parsed, and how a Slurm end becomes a jobyard Result.

Pure functions over the text of ``squeue``, ``scontrol -o show job``, ``sstat``
and ``sacct``: tested without a cluster.

| Slurm state                          | jobyard                                         |
|--------------------------------------|-------------------------------------------------|
| PENDING, CONFIGURING, RUNNING, …     | running (live)                                  |
| SUSPENDED, STOPPED                   | paused (when jobyard paused it)                 |
| COMPLETED                            | succeeded                                       |
| FAILED                               | failed, exit code (or signal) of the script     |
| CANCELLED (by jobyard)               | killed, as asked                                |
| CANCELLED (outside jobyard)          | killed, reason ``killed``, error says so        |
| TIMEOUT, DEADLINE                    | failed, reason ``timeout``                      |
| OUT_OF_MEMORY                        | failed, reason ``out_of_memory``                |
| NODE_FAIL, BOOT_FAIL, PREEMPTED, gone| failed, reason ``executor_lost`` (retried)      |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jobyard.runner.contract import Result

LIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "SUSPENDED",
        "COMPLETING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "RESV_DEL_HOLD",
    }
)
LOST_STATES = frozenset({"NODE_FAIL", "BOOT_FAIL", "PREEMPTED", "REVOKED", "SPECIAL_EXIT"})
GONE = "GONE"  # our name for a job Slurm no longer knows (purged, or its state lost)
# Why a job held since its submission (``sbatch --hold``) pends: jobyard's hold.
HOLDS = frozenset({"JobHeldUser", "JobHeldAdmin"})
NOT_OURS = "NOT_OURS"  # the recorded id names a job of someone else: never followed
_SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}


@dataclass(frozen=True)
class SlurmState:
    """One job as ``squeue`` or ``scontrol`` shows it."""

    state: str
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    comment: str | None = None  # the job's --comment ("": none); None: the source shows none

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES


def parse_squeue(text: str) -> dict[str, SlurmState]:
    """``squeue -h -o %i|%T|%r|%k`` → job id → state (array and step lines are skipped)."""
    states = {}
    for line in text.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) >= 2 and parts[0].isdigit():
            reason = _reason(parts[2] if len(parts) > 2 else None)
            comment = (_reason(parts[3]) or "") if len(parts) > 3 else None
            states[parts[0]] = SlurmState(parts[1], reason, comment=comment)
    return states


def parse_show_job(text: str) -> SlurmState | None:
    """``scontrol -o show job ID`` → its state with exit code and signal; None if empty."""
    fields = dict(re.findall(r"(\w+)=(\S*)", text))
    if "JobState" not in fields:
        return None
    code, _, sig = fields.get("ExitCode", "").partition(":")
    return SlurmState(
        state=fields["JobState"],
        reason=_reason(fields.get("Reason")),
        exit_code=int(code) if code.isdigit() else None,
        signal=int(sig) if sig.isdigit() and int(sig) else None,
        comment=_reason(fields.get("Comment")) or "",  # absent when the job has none
    )


def parse_sacct(text: str) -> SlurmState | None:
    """``sacct -n -P -X -o State,ExitCode,Reason`` of one job; None if it has no line."""
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 2 and parts[0]:
            state = parts[0].split()[0]  # "CANCELLED by 0" → CANCELLED
            code, _, sig = parts[1].partition(":")
            return SlurmState(
                state=state,
                reason=_reason(parts[2] if len(parts) > 2 else None),
                exit_code=int(code) if code.isdigit() else None,
                signal=int(sig) if sig.isdigit() and int(sig) else None,
            )
    return None


MEASURABLE_CPU = 100 * 365 * 86400.0  # seconds: more is no measurement


def parse_sstat(text: str) -> dict[str, tuple[float, int]]:
    """``sstat -n -P -a -o JobID,AveCPU,MaxRSS`` → job id → (CPU seconds, peak RSS bytes),
    summed (CPU) and maxed (memory) over the job's steps."""
    usage: dict[str, tuple[float, int]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3 or not parts[0] or not parts[2].strip():
            continue  # a step not measured yet: no memory figure, and no CPU figure either
        if parse_cpu_time(parts[1]) > MEASURABLE_CPU:
            continue  # Slurm's "no value" (2^64 - 1 µs, shown as 213503982334-14:25:51)
        job = parts[0].split(".")[0]
        cpu, rss = usage.get(job, (0.0, 0))
        usage[job] = (cpu + parse_cpu_time(parts[1]), max(rss, parse_size(parts[2])))
    return usage


def parse_cpu_time(text: str) -> float:
    """Slurm's ``[D-]HH:MM:SS[.mmm]`` or ``MM:SS.mmm`` as seconds (0 for what does not parse)."""
    days, _, clock = text.strip().rpartition("-")
    try:
        parts = reversed(clock.split(":"))
        seconds = sum(float(part) * 60.0**i for i, part in enumerate(parts))
        return seconds + (int(days) * 86400 if days else 0)
    except ValueError:
        return 0.0


def parse_size(text: str) -> int:
    """Slurm's ``7440K`` (binary units) as bytes; 0 for what does not parse."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)([KMGTP]?)\s*", text)
    return int(float(match[1]) * _SIZE_UNITS[match[2]]) if match else 0


def result_of(
    end: SlurmState,
    *,
    asked_to_stop: bool,
    cpu_seconds: float | None,
    peak_memory: int | None,
) -> Result:
    """The Result of a Slurm job that ended in ``end`` (``asked_to_stop``: by jobyard)."""

    def ended(
        error: str | None,
        *,
        code: int | None = None,
        sig: int | None = None,
        reason: str | None = None,
    ) -> Result:
        succeeded = error is None
        return Result(code, sig, error, cpu_seconds, peak_memory, succeeded, reason=reason)

    why = f" ({end.reason})" if end.reason else ""
    if end.state in ("COMPLETED", "FAILED"):
        if end.signal:
            return ended(f"killed by signal {end.signal}", sig=end.signal)
        code = end.exit_code or 0
        return ended(None if code == 0 else f"exit code {code}", code=code)
    if end.state == "CANCELLED":
        if asked_to_stop:
            return ended("cancelled in Slurm", sig=end.signal or 15)
        return ended(f"cancelled in Slurm outside jobyard{why}", sig=end.signal, reason="killed")
    if end.state in ("TIMEOUT", "DEADLINE"):
        return ended(f"Slurm's time limit was reached{why}", reason="timeout")
    if end.state == "OUT_OF_MEMORY":
        return ended(f"Slurm killed it: out of memory{why}", reason="out_of_memory")
    if end.state == GONE:
        error = "Slurm no longer knows the job (its record was lost or purged)"
        return ended(error, reason="executor_lost")
    if end.state == NOT_OURS:
        error = "the Slurm job with the recorded id is not this attempt's (its id was reused)"
        return ended(error, reason="executor_lost")
    return ended(f"Slurm ended it {end.state}{why}", reason="executor_lost")


def _reason(text: str | None) -> str | None:
    return None if text in (None, "", "None", "(null)") else text
