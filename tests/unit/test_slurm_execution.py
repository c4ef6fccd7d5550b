"""A Slurm execution's own parts: which jobs are ours (``--comment``), the output follower."""

from __future__ import annotations

from pathlib import Path

from jobyard.runner.slurm.batch import attempt_of, identity
from jobyard.runner.slurm.cli import SlurmCli
from jobyard.runner.slurm.execution import READ_SIZE, Follow, SlurmExecution
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


def test_the_follower_reads_at_most_a_chunk_per_tick(tmp_path: Path) -> None:
    path = tmp_path / "out"
    line = b"x" * 1023 + b"\n"
    path.write_bytes(line * 2500)  # about 2.4 MiB
    follow = Follow("stdout", str(path), 0)
    sizes = [follow.read()[0] for _ in range(3)]
    assert sizes == [READ_SIZE, READ_SIZE, 2500 * 1024 - 2 * READ_SIZE]
    assert follow.read() == (0, [])
    assert follow.committed == 2500 * 1024


def test_the_last_read_takes_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_bytes(b"y\n" * READ_SIZE + b"tail")
    nbytes, lines = Follow("stdout", str(path), 0).read(end=True)
    assert (nbytes, len(lines), lines[-1]) == (2 * READ_SIZE + 4, READ_SIZE + 1, "tail")
