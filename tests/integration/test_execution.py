"""Jobs run by a real server, on SQLite and on the real database servers.

Each test starts ``jobyard serve`` as a subprocess and talks HTTP to it; job
processes are observed with psutil, as a user would with ``ps``.
"""

from __future__ import annotations

from pathlib import Path

import psutil

from tests.harness import Server, shared_server, wait_for
from tests.processes import all_gone, running_with_processes

server = shared_server()


def test_a_job_that_prints_lines_succeeds_with_its_lines_in_order(server: Server) -> None:
    job = server.submit("lines", args={"count": 50})
    done = server.wait_state(job["id"], "succeeded")
    assert done["exit_code"] == 0
    lines = server.logs(job["id"])
    stdout = [item["line"] for item in lines if item["stream"] == "stdout"]
    stderr = [item["line"] for item in lines if item["stream"] == "stderr"]
    assert stdout == [f"line {i}" for i in range(50)]
    assert stderr == [f"err {i}" for i in range(50)]
    seqs = [item["seq"] for item in lines]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    resources = done["resources"]
    assert resources["output_bytes"] == sum(len(f"line {i}\nerr {i}\n") for i in range(50))
    assert resources["runtime_seconds"] > 0
    assert resources["cpu_seconds"] is not None
    assert resources["peak_memory_bytes"] > 1_000_000
    assert done["started_at"] <= done["finished_at"]
    # paging by sequence number
    first = server.logs(job["id"], limit=10)
    rest = server.logs(job["id"], after=first[-1]["seq"])
    assert [i["seq"] for i in first + rest] == seqs


def test_pause_stops_every_process_resume_continues_kill_leaves_nothing(server: Server) -> None:
    job = server.submit("sleep", args={"seconds": 60})
    processes = running_with_processes(server, job["id"], 3)

    paused = server.act(job["id"], "pause")
    assert paused.status_code == 202
    assert paused.json()["control"] == "pause"
    server.wait_state(job["id"], "paused")
    wait_for(lambda: all(p.status() == psutil.STATUS_STOPPED for p in processes), what="state T")
    server.act(job["id"], "pause", expect=409)

    server.act(job["id"], "resume", expect=202)
    server.wait_state(job["id"], "running")
    wait_for(lambda: all(p.status() != psutil.STATUS_STOPPED for p in processes), what="resumed")
    server.act(job["id"], "resume", expect=409)

    server.act(job["id"], "kill", expect=202)
    killed = server.wait_state(job["id"], "killed", timeout=15)
    assert killed["reason"] == "killed"
    assert killed["resources"]["paused_seconds"] > 0
    wait_for(lambda: all_gone(processes), timeout=5, what="no surviving process")
    server.act(job["id"], "resume", expect=409)


def test_a_job_that_ignores_sigterm_is_killed_after_the_grace(server: Server) -> None:
    job = server.submit("stubborn")
    processes = running_with_processes(server, job["id"], 3)
    server.act(job["id"], "kill", expect=202)
    server.wait_state(job["id"], "killed", timeout=15)
    wait_for(lambda: all_gone(processes), timeout=5, what="no surviving process")


def test_retries_run_the_job_again_then_fail(server: Server) -> None:
    job = server.submit("fail", args={"code": 4})
    failed = server.wait_state(job["id"], "failed")
    assert failed["attempt"] == 3
    assert failed["max_attempts"] == 3
    assert failed["exit_code"] == 4
    assert failed["reason"] == "exit_code"
    lines = [item["line"] for item in server.logs(job["id"]) if item["stream"] == "stdout"]
    assert lines == ["failing"] * 3


def test_a_timeout_kills_the_job(server: Server) -> None:
    job = server.submit("slow")
    failed = server.wait_state(job["id"], "failed", timeout=20)
    assert failed["reason"] == "timeout"
    assert "timed out" in failed["error"]


def test_a_monitor_is_restarted_until_someone_kills_it(server: Server) -> None:
    job = server.submit("flaky-monitor")
    wait_for(lambda: server.job(job["id"])["restart_count"] >= 2, what="two restarts")
    server.act(job["id"], "kill")
    killed = server.wait_state(job["id"], "killed")
    assert killed["restart_count"] >= 2
    ticks = [item for item in server.logs(job["id"]) if item["line"] == "tick"]
    assert len(ticks) >= 2


def test_commands_report_progress_and_metrics_with_the_line_protocol(server: Server) -> None:
    job = server.submit("progress")
    done = server.wait_state(job["id"], "succeeded")
    assert done["progress"] == {"fraction": 0.5, "message": "half way"}
    assert done["metrics"]["rows"] == 42
    assert [item["line"] for item in server.logs(job["id"]) if item["stream"] == "stdout"] == [
        "done"
    ]


def test_a_progress_message_of_any_length_is_stored_cut(server: Server) -> None:
    """Undecodable bytes are stored three times as long: on MariaDB (TEXT: 65,535 bytes)
    such a message was a refused write that failed the job and lost its lines."""
    code = (
        "import sys\n"
        "sys.stdout.buffer.write(b'##jobyard progress 0.5 ' + b'\\xff' * 25000 + b'\\n')\n"
        "print('done')"
    )
    made = server.client.post(
        "/api/v1/job-types", json={"name": "long-progress", "command": ["python3", "-c", code]}
    )
    assert made.status_code == 201, made.text
    try:
        job = server.submit("long-progress")
        done = server.wait_state(job["id"], "succeeded", "failed")
        assert done["state"] == "succeeded", done
        message = done["progress"]["message"]
        assert (len(message), message[-2:]) == (1000, "\ufffd…")
        assert [item["line"] for item in server.logs(job["id"])][-1] == "done"
    finally:
        server.client.delete("/api/v1/job-types/long-progress")


def test_a_held_job_waits_until_it_is_started(server: Server) -> None:
    job = server.submit("echo", args={"text": "later"}, hold=True)
    assert job["state"] == "held"
    assert server.job(job["id"])["state"] == "held"
    started = server.act(job["id"], "start", expect=200).json()
    assert started["state"] in ("queued", "running", "succeeded")
    server.wait_state(job["id"], "succeeded")
    server.act(job["id"], "start", expect=409)


def test_restart_makes_a_new_job_linked_both_ways(server: Server) -> None:
    job = server.submit("echo", args={"text": "once"})
    server.wait_state(job["id"], "succeeded")
    response = server.client.post(f"/api/v1/jobs/{job['id']}/restart", json={})
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["id"] != job["id"]
    assert new["restarted_from"] == job["id"]
    assert new["args"] == {"text": "once", "repeat": 1}
    assert server.job(job["id"])["restarted_as"] == new["id"]
    server.wait_state(new["id"], "succeeded")
    changed = server.client.post(
        f"/api/v1/jobs/{new['id']}/restart", json={"args": {"text": "twice"}}
    ).json()
    assert changed["args"]["text"] == "twice"


def test_remove_refuses_a_live_job_unless_forced(server: Server) -> None:
    live = server.submit("sleep", args={"seconds": 60})
    processes = running_with_processes(server, live["id"], 3)
    refused = server.client.delete(f"/api/v1/jobs/{live['id']}")
    assert refused.status_code == 409
    assert refused.json()["state"] == "running"
    assert server.client.delete(f"/api/v1/jobs/{live['id']}?force=true").status_code == 204
    assert server.client.get(f"/api/v1/jobs/{live['id']}").status_code == 404
    wait_for(lambda: all_gone(processes), timeout=20, what="the removed job's processes to end")

    done = server.submit("echo", args={"text": "x"})
    server.wait_state(done["id"], "succeeded")
    assert server.client.delete(f"/api/v1/jobs/{done['id']}").status_code == 204
    assert server.client.get(f"/api/v1/jobs/{done['id']}/logs").status_code == 404


def test_python_function_jobs_report_progress_metrics_and_output(server: Server) -> None:
    job = server.submit("py-count", args={"n": 4})
    done = server.wait_state(job["id"], "succeeded")
    assert done["kind"] == "python"
    assert done["progress"]["fraction"] == 1.0
    assert done["metrics"]["rows"] == 4
    stdout = [i["line"] for i in server.logs(job["id"]) if i["stream"] == "stdout"]
    assert [line for line in stdout if line.startswith("count")] == [f"count {i}" for i in range(4)]


def test_a_python_exception_fails_the_job_with_its_traceback(server: Server) -> None:
    job = server.submit("py-fail")
    failed = server.wait_state(job["id"], "failed")
    assert "ValueError: bad row 17" in failed["error"]
    lines = [item["line"] for item in server.logs(job["id"])]
    assert "about to fail" in lines
    assert any("Traceback" in line for line in lines)


def test_python_class_jobs_get_their_hooks(server: Server, tmp_path: Path) -> None:
    marker = tmp_path / "hooks.txt"
    job = server.submit("py-sleep", args={"marker": str(marker)})
    processes = running_with_processes(server, job["id"], 1)
    wait_for(lambda: marker.exists() and "start" in marker.read_text(), what="start hook")
    server.act(job["id"], "pause", expect=202)
    server.wait_state(job["id"], "paused")
    wait_for(lambda: processes[0].status() == psutil.STATUS_STOPPED, what="python job stopped")
    server.act(job["id"], "resume", expect=202)
    server.wait_state(job["id"], "running")
    wait_for(lambda: server.job(job["id"])["details"].get("phase") == "sleeping", what="details")
    server.act(job["id"], "kill", expect=202)
    server.wait_state(job["id"], "killed", timeout=15)
    hooks = marker.read_text().split()
    assert hooks[:3] == ["start", "pause", "resume"]
    assert "stop" in hooks
    assert hooks[-1] == "clean"


def test_a_killed_class_job_keeps_the_details_it_reported(server: Server) -> None:
    job = server.submit("py-resize", args={"count": 50, "upto": 20})
    reported = {"resized": 20, "of": 50}
    wait_for(lambda: server.job(job["id"])["details"] == reported, what="the job's details")
    server.act(job["id"], "kill", expect=202)
    killed = server.wait_state(job["id"], "killed", timeout=15)
    lines = [item["line"] for item in server.logs(job["id"])]
    assert "removed the half-written images" in lines  # clean() ran, on an object of its own
    assert killed["details"] == reported
