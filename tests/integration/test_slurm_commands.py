"""Slurm's commands as the executor runs them: a bounded wait, retries only when worth it.

Real processes stand in for a controller that hangs or is away (no cluster needed).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jobyard.runner.slurm import SlurmCli, SlurmError


def test_a_command_that_hangs_is_cut_at_the_timeout_and_retried(tmp_path: Path) -> None:
    cli = SlurmCli(timeout=0.3, tries=2, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(SlurmError) as failed:
        cli.run(["sleep", "30"])
    assert failed.value.transient
    assert "took more than 0.3 s" in str(failed.value)
    assert time.monotonic() - started < 5  # two tries of 0.3 s, not 30 s


def test_an_absent_controller_is_tried_again_a_refusal_is_not(tmp_path: Path) -> None:
    tries = tmp_path / "tries"
    away = tmp_path / "away.sh"
    away.write_text(
        f"#!/bin/sh\necho x >> {tries}\n"
        "echo 'squeue: error: Unable to contact slurm controller (connect failure)' >&2\nexit 1\n"
    )
    away.chmod(0o755)
    cli = SlurmCli(timeout=5, tries=3, backoff=0.01)
    with pytest.raises(SlurmError) as failed:
        cli.run([str(away)])
    assert failed.value.transient
    assert len(tries.read_text().splitlines()) == 3
    refused = tmp_path / "refused.sh"
    refused.write_text(
        f"#!/bin/sh\necho x >> {tries}.2\necho 'Invalid job id specified' >&2\nexit 1\n"
    )
    refused.chmod(0o755)
    with pytest.raises(SlurmError) as bad:
        cli.run([str(refused)])
    assert not bad.value.transient
    assert "Invalid job id specified" in str(bad.value)
    assert len(Path(f"{tries}.2").read_text().splitlines()) == 1
    assert cli.run(["echo", "fine"]) == "fine\n"


def test_a_refusal_names_the_command_once(tmp_path: Path) -> None:
    sbatch = tmp_path / "sbatch"
    sbatch.write_text(
        "#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Invalid account' >&2\n"
        "exit 1\n"
    )
    sbatch.chmod(0o755)
    cli = SlurmCli(timeout=5, tries=1, backoff=0.01)
    with pytest.raises(SlurmError) as refused:
        cli.run([str(sbatch)])
    assert str(refused.value) == "sbatch: error: Batch job submission failed: Invalid account"
    (tmp_path / "two").mkdir()
    twice = tmp_path / "two" / "sbatch"  # as sbatch tells an unknown partition: two lines
    twice.write_text(
        "#!/bin/sh\necho 'sbatch: error: invalid partition specified: nopart' >&2\n"
        "echo 'sbatch: error: Batch job submission failed: Invalid partition name' >&2\n"
        "exit 1\n"
    )
    twice.chmod(0o755)
    with pytest.raises(SlurmError) as said:
        cli.run([str(twice)])
    assert str(said.value) == (  # one line: it becomes the job's error and a line of its log
        "sbatch: error: invalid partition specified: nopart; "
        "sbatch: error: Batch job submission failed: Invalid partition name"
    )
    quiet = tmp_path / "quiet"
    quiet.write_text("#!/bin/sh\nexit 3\n")
    quiet.chmod(0o755)
    with pytest.raises(SlurmError) as failed:
        cli.run([str(quiet)])
    assert str(failed.value) == f"{quiet}: exit code 3"
