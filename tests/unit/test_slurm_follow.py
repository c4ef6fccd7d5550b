"""A Slurm job's output files as the executor follows them: lines, protocol, offsets.

The offsets it records are where an adopting worker goes on: every line once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from jobyard.runner.slurm import SlurmCli
from jobyard.runner.slurm.execution import SlurmExecution
from jobyard.runner.slurm.states import SlurmState
from tests.sinks import Recorder


def _execution(tmp_path: Path, sink: Recorder, offsets: tuple[int, int] = (0, 0)) -> SlurmExecution:
    paths = (str(tmp_path / "job.out"), str(tmp_path / "job.err"))
    return SlurmExecution(SlurmCli(), "42", "w:1:1", paths, sink, offsets)


def test_lines_protocol_and_offsets_and_an_adopter_goes_on_from_them(tmp_path: Path) -> None:
    out, err = tmp_path / "job.out", tmp_path / "job.err"
    first = Recorder()
    execution = _execution(tmp_path, first)
    execution.follow()  # no file yet: the job has not started
    assert first.events == []
    out.write_bytes(b"one\n##jobyard progress 0.25 quarter\ntw")
    err.write_bytes(b"oops\n")
    execution.follow()
    assert first.of("log") == [("stdout", "one"), ("stderr", "oops")]
    assert first.of("progress") == [(0.25, "quarter")]
    details = first.of("details")[-1][0]
    assert details["slurm_job_id"] == "42"
    assert details["offsets"] == [len(b"one\n##jobyard progress 0.25 quarter\n"), 5]

    # The worker dies here; another adopts the job from the recorded offsets.
    with out.open("ab") as file:
        file.write(b"o\nthree")
    second = Recorder()
    offsets = details["offsets"]
    adopted = _execution(tmp_path, second, (offsets[0], offsets[1]))
    adopted.follow()
    adopted.end = SlurmState("COMPLETED", None, 0)
    adopted.finish()
    assert second.of("log") == [
        ("stdout", "two"),
        ("stdout", "three"),
        ("system", "Slurm job 42 ended: COMPLETED"),
    ]
    result = adopted.wait(0)
    assert result is not None
    assert result.succeeded
    assert second.events[-1] == ("ended",)
    assert not out.exists()  # read to the end: removed
    assert not err.exists()


class Batches(Recorder):
    """A Recorder that also notes where each ``together()`` batch begins and ends."""

    @contextmanager
    def _batch(self) -> Iterator[None]:
        self._add("begin")
        yield
        self._add("end")

    def together(self) -> AbstractContextManager[object]:
        return self._batch()


def test_lines_are_handed_in_one_batch_with_the_offsets_after_them(tmp_path: Path) -> None:
    # A worker's flush between the lines and the offsets would store the lines with the
    # old offsets: an adopter after a crash would then hand the same lines out again.
    (tmp_path / "job.out").write_bytes(b"started\n")
    sink = Batches()
    _execution(tmp_path, sink).follow()
    kinds = [event[0] for event in sink.events]
    assert kinds == ["begin", "output", "log", "details", "end"]
    assert sink.of("details")[0][0]["offsets"] == [len(b"started\n"), 0]
