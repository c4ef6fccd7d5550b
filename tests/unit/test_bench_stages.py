"""bench/bench_stages.py: the stamps of each job's stages, told apart and summed up."""

from __future__ import annotations

from pathlib import Path

from bench.bench_stages import _by_job, _read, report


def test_stamps_go_to_the_job_sent_before_them_and_the_first_of_a_stage_counts(
    tmp_path: Path,
) -> None:
    stamps = tmp_path / "stages.txt"
    stamps.write_text(
        "99.000000 claim.begun worker-host-7\n"  # before the first send: no job's
        "100.001000 insert.committed AnyIO worker thread\n"
        "100.002000 claim.begun worker-host-7\n"
        "100.003000 claim.begun worker-host-7\n"  # an idle poll after it: not counted
        "100.004000 run.thread_running job-12\n"
        "100.011000 insert.committed AnyIO worker thread\n"
    )
    client = [(100.0, 100.0025, 100.005), (100.010, 100.012, 100.013)]
    first, second = _by_job(client, _read(stamps))
    assert first["claim.begun"] == (first["claim.begun"][0], "worker")
    assert round(first["claim.begun"][0], 6) == 0.002
    assert first["run.thread_running"][1] == "job"
    assert first["insert.committed"][1] == "AnyIO worker thread"
    assert round(first["body.started"][0], 6) == 0.005
    assert set(second) == {"client.sent", "client.answered", "body.started", "insert.committed"}
    assert round(second["insert.committed"][0], 6) == 0.001


def test_the_report_orders_stages_by_their_median_and_says_the_steps() -> None:
    jobs = [
        {"client.sent": (0.0, "client"), "a": (0.001, "t"), "b": (0.003, "u")},
        {"client.sent": (0.0, "client"), "a": (0.002, "t"), "b": (0.003, "u")},
        {"client.sent": (0.0, "client"), "a": (0.003, "t")},
    ]
    lines = report(jobs).splitlines()
    assert lines[0].startswith("3 jobs; ")
    assert [line.split()[0] for line in lines[1:4]] == ["client.sent", "a", "b"]
    assert lines[2].split()[1:] == ["2.00", "2.00", "t", "3"]
    assert lines[3].split()[-1] == "2"
    assert lines[4].startswith("steps")
    assert lines[5].split() == ["client.sent", "→", "a", "2.000"]
    assert lines[6].split() == ["a", "→", "b", "1.500"]
