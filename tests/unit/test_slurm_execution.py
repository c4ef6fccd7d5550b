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


def test_an_ended_jobs_output_is_read_to_the_end_a_chunk_at_a_time(tmp_path: Path) -> None:
    """All that was left was read into one list of lines: gigabytes of output a job
    wrote in its last seconds filled the worker's memory."""
    out, err = tmp_path / "out", tmp_path / "err"
    out.write_bytes(b"y\n" * READ_SIZE + b"tail")
    err.write_bytes(b"")
    sink = Recorder()
    execution = SlurmExecution(SlurmCli(), "12", "w:3:2", (str(out), str(err)), sink)
    execution.end = SlurmState("COMPLETED", exit_code=0)
    execution.finish()
    chunks = [event[1] for event in sink.events if event[0] == "output"]
    assert chunks == [READ_SIZE, READ_SIZE, 4]
    lines = [event[2] for event in sink.events if event[:2] == ("log", "stdout")]
    assert (len(lines), lines[-1]) == (READ_SIZE + 1, "tail")
    first_chunk = sink.events.index(("output", READ_SIZE), 1)  # the second chunk
    handed = sink.events[:first_chunk]  # the first chunk's lines, before the next is read
    assert sum(1 for event in handed if event[:2] == ("log", "stdout")) == READ_SIZE // 2
