"""The Slurm executor's pure parts: what Slurm prints, how an end maps, sbatch's argv."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from jobyard.config import ConfigError, load_config
from jobyard.jobtypes.executor import SlurmSpec
from jobyard.jobtypes.spec import JobTypeInvalid, parse_job_type
from jobyard.runner.slurm.batch import SlurmOptions, sbatch_argv, script, slurm_time
from jobyard.runner.slurm.states import (
    GONE,
    SlurmState,
    parse_cpu_time,
    parse_sacct,
    parse_show_job,
    parse_size,
    parse_squeue,
    parse_sstat,
    result_of,
)

SHOWN = (
    "JobId=12 JobName=jobyard-3 UserId=root(0) JobState=FAILED Reason=NonZeroExitCode "
    "Dependency=(null) ExitCode=3:0 RunTime=00:00:04 StdOut=/w/jobyard-3-12.out"
)


def test_squeue_lines_become_states_and_odd_lines_are_skipped() -> None:
    text = "12|RUNNING|None\n13|PENDING|Priority\n14_1|RUNNING|None\n\n"
    assert parse_squeue(text) == {
        "12": SlurmState("RUNNING"),
        "13": SlurmState("PENDING", "Priority"),
    }


def test_squeue_shows_the_comment_that_marks_a_job_as_ours() -> None:
    text = "12|RUNNING|None|jobyard:a1:3:2\n13|PENDING|Priority|(null)\n"
    assert parse_squeue(text) == {
        "12": SlurmState("RUNNING", comment="jobyard:a1:3:2"),
        "13": SlurmState("PENDING", "Priority", comment=""),
    }


def test_show_job_gives_exit_code_signal_and_reason() -> None:
    assert parse_show_job(SHOWN) == SlurmState("FAILED", "NonZeroExitCode", 3, None, "")
    cancelled = parse_show_job("JobId=4 JobState=CANCELLED Reason=None ExitCode=0:15")
    assert cancelled == SlurmState("CANCELLED", None, 0, 15, "")
    marked = parse_show_job("JobId=4 JobState=RUNNING Comment=jobyard:a1:3:2 ExitCode=0:0")
    assert marked is not None
    assert marked.comment == "jobyard:a1:3:2"
    assert parse_show_job("") is None


def test_sacct_and_sstat_lines() -> None:
    assert parse_sacct("CANCELLED by 0|0:15|None\n") == SlurmState("CANCELLED", None, 0, 15)
    assert parse_sacct("") is None
    usage = parse_sstat("12.batch|00:00:02|7440K\n12.0|01:00.500|2M\n13.batch|1-00:00:00|1G\n")
    assert usage == {"12": (62.5, 7440 * 2**10), "13": (86400.0, 2**30)}
    assert parse_cpu_time("junk") == 0.0
    assert parse_size("") == 0


def test_a_step_sstat_has_not_measured_yet_counts_for_nothing() -> None:
    """Just after a step starts, sstat shows Slurm's "no value": CPU 2^64 - 1 µs, no memory.
    It was stored as 1.8e13 CPU seconds (kept as the maximum for good) and memory 0."""
    unmeasured = "12.0|213503982334-14:25:51|\n"
    assert parse_sstat(unmeasured) == {}
    measured = parse_sstat("12.batch|00:00:02|7440K\n" + unmeasured)
    assert measured == {"12": (2.0, 7440 * 2**10)}


@pytest.mark.parametrize(
    ("end", "asked", "expected"),
    [
        (SlurmState("COMPLETED", None, 0), False, (True, 0, None, None)),
        (SlurmState("FAILED", "NonZeroExitCode", 3), False, (False, 3, None, None)),
        (SlurmState("FAILED", None, 0, 9), False, (False, None, 9, None)),
        (SlurmState("CANCELLED", None, 0, 15), True, (False, None, 15, None)),
        (SlurmState("CANCELLED", None, 0, 15), False, (False, None, 15, "killed")),
        (SlurmState("TIMEOUT", "TimeLimit"), False, (False, None, None, "timeout")),
        (SlurmState("OUT_OF_MEMORY"), False, (False, None, None, "out_of_memory")),
        (SlurmState("NODE_FAIL", "NodeDown"), False, (False, None, None, "executor_lost")),
        (SlurmState(GONE), False, (False, None, None, "executor_lost")),
    ],
)
def test_a_slurm_end_maps_to_a_result(
    end: SlurmState, asked: bool, expected: tuple[bool, int | None, int | None, str | None]
) -> None:
    result = result_of(end, asked_to_stop=asked, cpu_seconds=1.0, peak_memory=None)
    assert (result.succeeded, result.exit_code, result.signal, result.reason) == expected
    assert result.cpu_seconds == 1.0
    if not result.succeeded:
        assert result.error


def test_an_outside_cancel_and_a_node_failure_say_why() -> None:
    cancel = result_of(
        SlurmState("CANCELLED"), asked_to_stop=False, cpu_seconds=None, peak_memory=None
    )
    assert cancel.error == "cancelled in Slurm outside jobyard"
    lost = SlurmState("NODE_FAIL", "NodeDown")
    assert "NODE_FAIL (NodeDown)" in (
        result_of(lost, asked_to_stop=False, cpu_seconds=None, peak_memory=None).error or ""
    )


def test_the_batch_script_runs_the_argv_word_for_word() -> None:
    argv = ["printf", "%s|", "a b", "$(touch /tmp/pwned)", "it's", "; rm -rf /"]
    text = script(argv, {b"PATH": os.environb[b"PATH"]}).decode()
    assert text.startswith("#!/bin/sh\n")
    assert shlex.split(text.splitlines()[-1]) == ["exec", *argv]
    done = subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=True)
    assert done.stdout == "a b|$(touch /tmp/pwned)|it's|; rm -rf /|"


def test_the_batch_script_exports_the_jobs_environment_quoted() -> None:
    env = {
        b"PATH": os.environb[b"PATH"],
        b"ODD": b"it's $(touch /tmp/pwned)\nline two",
        b"NOT-A-NAME": b"left out",
    }
    text = script(["sh", "-c", 'printf \'%s|\' "$ODD" "${SECRET-unset}"'], env)
    assert b"NOT-A-NAME" not in text
    done = subprocess.run(
        ["sh", "-c", text.decode()], capture_output=True, text=True, check=True, env={}
    )
    assert done.stdout == "it's $(touch /tmp/pwned)\nline two|unset|"


def test_sbatch_argv_carries_every_option() -> None:
    options = SlurmOptions(
        partition="debug",
        account="lab",
        qos="short",
        time=90.0,
        cpus=2,
        mem=100 * 10**6,
        gres="gpu:1",
        options=("--exclusive",),
        workdir="/shared",
    )
    argv = sbatch_argv(options, 7, "jobyard:a1:7:1", "/shared/s.sh", None, None)
    assert argv[:4] == ["sbatch", "--parsable", "--no-requeue", "--job-name=jobyard-7"]
    assert "--comment=jobyard:a1:7:1" in argv
    assert "--export=NONE" in argv
    assert "--hold" in argv  # released once the id is stored
    assert "--output=/shared/jobyard-7-%j.out" in argv
    assert "--error=/shared/jobyard-7-%j.err" in argv
    assert "--chdir=/shared" in argv
    for option in ("--partition=debug", "--account=lab", "--qos=short", "--cpus-per-task=2"):
        assert option in argv
    assert "--gres=gpu:1" in argv
    assert "--mem=96M" in argv
    assert "--time=0-00:01:30" in argv
    assert argv[-2:] == ["--exclusive", "/shared/s.sh"]
    timed = sbatch_argv(SlurmOptions(), 7, "jobyard:a1:7:1", "/s.sh", "/work", 3600.0)
    assert "--time=0-01:01:00" in timed  # jobyard's timeout, and a minute for its grace
    assert "--chdir=/work" in timed
    assert slurm_time(2 * 86400 + 1.2) == "2-00:00:02"
    # mem: 0 is sbatch's "all of the node's memory", not the least it may have (1M).
    assert "--mem=0M" in sbatch_argv(SlurmOptions(mem=0), 7, "c", "/s.sh", None, None)
    assert "--mem=1M" in sbatch_argv(SlurmOptions(mem=1), 7, "c", "/s.sh", None, None)


@pytest.mark.parametrize(
    ("option", "why"),
    [
        ("--out=/etc/x", "--output is set by jobyard"),
        ("--chd=/", "--chdir is set by jobyard"),
        ("--requ", "--requeue is set by jobyard"),
        ("--hol", "--hold is set by jobyard"),
        ("--array=1-3", "--array is set by jobyard"),
        ("--export=ALL", "--export is set by jobyard"),
        ("--wrap=id", "--wrap is set by jobyard"),
        ("--comm=x", "--comment is set by jobyard"),
        ("--exc", "ambiguous: --exclude, --exclusive"),
        ("--frobnicate", "not an sbatch option"),
    ],
)
def test_an_sbatch_option_is_checked_by_the_full_name_getopt_reads(option: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        SlurmSpec(options=[option])


def test_an_allowed_prefix_is_written_out_in_full() -> None:
    assert SlurmSpec(options=["--exclusiv", "--ni=10", "--extra=x"]).options == [
        "--exclusive",
        "--nice=10",
        "--extra=x",
    ]


def test_every_bad_sbatch_option_is_said_at_once(tmp_path: Path) -> None:
    path = tmp_path / "jobyard.yaml"
    path.write_text(
        "queues:\n  hpc: {executor: {slurm: {options: [--nice=5, --out=x, -N2, --frobnicate]}}}\n"
    )
    with pytest.raises(ConfigError) as bad:
        load_config(path)
    assert [p.field for p in bad.value.problems] == [
        "queues.hpc.executor.slurm.options.1",
        "queues.hpc.executor.slurm.options.2",
        "queues.hpc.executor.slurm.options.3",
    ]


def test_a_type_validates_its_slurm_options() -> None:
    job_type = parse_job_type(
        "t", {"command": ["true"], "executor": {"slurm": {"mem": "1GiB", "time": "1h"}}}
    )
    assert job_type.resolve({}).executor == {"slurm": {"mem": 2**30, "time": 3600.0}}
    assert parse_job_type("t", {"command": ["true"], "executor": "slurm"}).resolve({}).executor == {
        "slurm": {}
    }
    assert (
        parse_job_type("t", {"command": ["true"], "executor": "local"}).resolve({}).executor is None
    )
    with pytest.raises(JobTypeInvalid) as bad:
        parse_job_type(
            "t",
            {
                "command": ["true"],
                "executor": {"slurm": {"partition": "a b", "options": ["--output=x", "-x"]}},
            },
        )
    fields = {error["field"] for error in bad.value.errors}
    assert fields == {
        "executor.slurm.partition",
        "executor.slurm.options.0",
        "executor.slurm.options.1",
    }
    with pytest.raises(JobTypeInvalid) as percent:  # Slurm would read %u in the file names
        parse_job_type("t", {"command": ["true"], "executor": {"slurm": {"workdir": "/w/%u"}}})
    assert [error["field"] for error in percent.value.errors] == ["executor.slurm.workdir"]
    with pytest.raises(JobTypeInvalid) as python:
        parse_job_type("t", {"python": "m:f", "executor": "slurm"})
    assert [error["field"] for error in python.value.errors] == ["executor"]


def test_a_queue_executor_applies_to_its_types(tmp_path: Path) -> None:
    path = tmp_path / "jobyard.yaml"
    path.write_text(
        "queues:\n  hpc: {executor: {slurm: {partition: debug}}}\n"
        "job_types:\n"
        "  a: {command: ['true'], queue: hpc}\n"
        "  b: {command: ['true'], queue: hpc, executor: local}\n"
        "  c: {command: ['true']}\n"
    )
    config = load_config(path)
    specs = {name: t.resolve({}).executor for name, t in config.job_types.items()}
    assert specs == {"a": {"slurm": {"partition": "debug"}}, "b": None, "c": None}
    path.write_text("job_types:\n  a: {command: ['true'], executor: pbs}\n")
    with pytest.raises(ConfigError) as bad:
        load_config(path)
    assert "job_types.a.executor" in str(bad.value)


def test_a_slurm_option_at_the_top_level_is_said_to_belong_under_executor_slurm() -> None:
    with pytest.raises(JobTypeInvalid) as bad:
        parse_job_type("t", {"command": ["true"], "cpus": 4, "comand": ["x"]})
    assert bad.value.errors == [
        {
            "field": "cpus",
            "message": "unknown key here; it belongs under executor.slurm "
            "(executor: {slurm: {cpus: …}})",
        },
        {"field": "comand", "message": "unknown key; did you mean 'command'?"},
    ]


def test_a_type_on_a_slurm_queue_is_checked_as_if_it_named_slurm(tmp_path: Path) -> None:
    path = tmp_path / "jobyard.yaml"
    path.write_text(
        "queues:\n"
        "  hpc: {executor: slurm}\n"
        "job_types:\n"
        "  as-root:\n"
        "    command: ['true']\n"
        "    queue: hpc\n"
        "    user: root\n"
    )
    with pytest.raises(ConfigError) as bad:
        load_config(path)
    assert str(bad.value) == (
        f"{path}:7: job_types.as-root.user: a Slurm job runs as the worker's user "
        "(give Slurm's own options instead) (its queue 'hpc' runs its jobs on Slurm)"
    )


def test_the_configuration_in_docs_executors_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "executors.md").read_text()
    example = doc.split("```yaml\n")[1].split("```")[0]
    path = tmp_path / "jobyard.yaml"
    path.write_text(example)
    types = load_config(path).job_types
    simulate = types["simulate"].resolve({"case": "a"})
    assert simulate.executor is not None
    assert simulate.executor["slurm"]["mem"] == 256 * 2**20
    assert simulate.executor["slurm"]["options"] == ["--nice=10"]
    assert types["summary"].resolve({}).executor == {"slurm": {"partition": "debug"}}
    assert types["local-check"].resolve({}).executor is None
    path.write_text(example.replace("partition: debug       #", "partition: de bug      #"))
    with pytest.raises(ConfigError) as bad:
        load_config(path)
    assert "jobyard.yaml:15: job_types.simulate.executor.slurm.partition: use 1-100" in str(
        bad.value
    )
