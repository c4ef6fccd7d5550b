"""Where a job type's jobs run: the ``executor`` key of a job type or a queue.

``executor: local`` (the default) runs jobs as processes of the worker's host.
``executor: slurm`` — or a mapping ``executor: {slurm: {partition: …}}`` — hands
each job to a Slurm cluster with ``sbatch`` (see :mod:`jobyard.runner.slurm`).
The resolved form travels in the job's :class:`~jobyard.models.JobSpec` as plain
JSON (``{"slurm": {...}}``), so the worker needs no job type to run the job.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from jobyard.durations import Duration, Size
from jobyard.jobtypes.params import FieldError, Problems
from jobyard.jobtypes.sbatch import OptionError, checked

_GRES = re.compile(r"[A-Za-z0-9_:.,=/-]{1,200}")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # partition, account, qos
_OPTION = re.compile(r"--[a-z][a-z0-9-]*(=.*)?", re.DOTALL)


class SlurmSpec(BaseModel):
    """What ``sbatch`` is asked for: each field maps to the option of the same name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: Annotated[Duration, Field(gt=0)] | None = None  # Slurm's own limit (--time)
    cpus: int | None = Field(default=None, ge=1, le=100_000)  # --cpus-per-task
    mem: Size | None = None  # --mem
    gres: str | None = None
    options: list[str] = Field(default_factory=list)  # more sbatch options, e.g. --exclusive
    # A directory every Slurm node and the worker see: output files and batch scripts.
    workdir: str | None = None

    @field_validator("partition", "account", "qos")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.fullmatch(value):
            raise ValueError("use 1-100 letters, digits, '_', '.' or '-'")
        return value

    @field_validator("gres")
    @classmethod
    def _valid_gres(cls, value: str | None) -> str | None:
        if value is not None and not _GRES.fullmatch(value):
            raise ValueError("not a gres list, e.g. gpu:1 or gpu:a100:2")
        return value

    @field_validator("options")
    @classmethod
    def _valid_options(cls, value: list[str]) -> list[str]:
        """Each option by its full name (a prefix is read as the option it stands for);
        every bad one is said, by its index."""
        full: list[str] = []
        problems: list[FieldError] = []
        for i, option in enumerate(value):
            if not _OPTION.fullmatch(option):
                message = f"{option!r}: give long options, e.g. --exclusive or --nice=10"
                problems.append({"field": str(i), "message": message})
                continue
            try:
                full.append(checked(option))
            except OptionError as exc:
                problems.append({"field": str(i), "message": str(exc)})
        if problems:
            raise Problems(problems)
        return full

    @field_validator("workdir")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("give an absolute path (a directory shared with the Slurm nodes)")
        if value is not None and "%" in value:  # Slurm would read %u, %j… in the file names
            raise ValueError("a path without '%' (Slurm reads %j, %u, … in output file names)")
        return value


def _shorthand(value: Any) -> Any:
    """``local`` → local, chosen (not a queue's); ``slurm`` → Slurm with its defaults."""
    if value == "local":
        return {"slurm": None}
    if value == "slurm":
        return {"slurm": {}}
    if isinstance(value, str):
        raise ValueError("use local or slurm (or a mapping {slurm: {partition: …}})")
    return value


class ExecutorSpec(BaseModel):
    """The executor a job type or a queue chose: Slurm, or local when ``slurm`` is None."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slurm: SlurmSpec | None

    def to_spec(self) -> dict[str, Any] | None:
        """The JSON form a job's spec carries (None: the worker's host)."""
        if self.slurm is None:
            return None
        return {"slurm": self.slurm.model_dump(exclude_defaults=True)}


Executor = Annotated[ExecutorSpec | None, BeforeValidator(_shorthand)]
