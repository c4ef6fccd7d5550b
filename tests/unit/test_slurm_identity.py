"""Which Slurm jobs a worker takes for its own: the identity in ``--comment``."""

from __future__ import annotations

from jobyard.runner.slurm.batch import attempt_of, identity
from jobyard.runner.slurm.cli import SlurmCli
from jobyard.runner.slurm.execution import SlurmExecution
from jobyard.runner.slurm.states import GONE, NOT_OURS, SlurmState, result_of
from tests.sinks import Recorder


def _execution(mark: str | None) -> SlurmExecution:
    paths = ("/w/o", "/w/e")
    return SlurmExecution(SlurmCli(), "12", "w:3:2", paths, Recorder(), identity=mark)


def test_the_identity_names_the_installation_the_job_and_the_attempt() -> None:
    assert identity("a1b2", 3, attempt_of("host-1:3:2")) == "jobyard:a1b2:3:2"


def test_a_job_under_our_id_with_another_comment_is_not_ours() -> None:
    ours = _execution("jobyard:a1:3:2")
    assert ours.owns(SlurmState("RUNNING", comment="jobyard:a1:3:2"))
    assert not ours.owns(SlurmState("RUNNING", comment="jobyard:other:3:2"))
    assert not ours.owns(SlurmState("RUNNING", comment="jobyard:a1:3:1"))  # another attempt
    assert not ours.owns(SlurmState("COMPLETED", comment=""))  # someone's, unmarked
    assert ours.owns(SlurmState("COMPLETED"))  # sacct shows no comment
    assert ours.owns(SlurmState(GONE))


def test_a_job_submitted_before_marking_is_trusted() -> None:
    assert _execution(None).owns(SlurmState("RUNNING", comment=""))


def test_a_job_that_is_not_ours_ends_the_attempt_as_lost() -> None:
    lost = SlurmState(NOT_OURS)
    result = result_of(lost, asked_to_stop=False, cpu_seconds=None, peak_memory=None)
    assert (result.succeeded, result.reason) == (False, "executor_lost")
    assert result.error is not None
    assert "not this attempt's" in result.error
