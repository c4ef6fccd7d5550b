"""Workflow runs on a real server: DAG order, failure blocking, fixing, stop and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.harness import Launcher, Server, read_sse, run_in, shared_server, start_run, wait_for

server = shared_server()


def notes_of(server: Server, **query: Any) -> list[dict[str, Any]]:
    response = server.client.get("/api/v1/notifications", params=query)
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def notifier_past_now(server: Server) -> None:
    """Return once the notifier has read every event stored so far: it reads them in order,
    so a failure made now is told only after them."""
    probe = server.submit("fail", args={"code": 1})["id"]
    wait_for(lambda: notes_of(server, job=probe), what="the notifier to pass the probe's end")


def ended(server: Server, run_id: int) -> dict[str, Any] | None:
    """The run once it has ended (it has a ``finished_at``), else None."""
    run: dict[str, Any] = server.client.get(f"/api/v1/workflow-runs/{run_id}").json()
    return run if run["finished_at"] else None


def test_a_diamond_runs_every_node_after_its_upstream(server: Server) -> None:
    spec = server.client.get("/api/v1/workflows/diamond").json()
    assert ("extract", "left") in [tuple(edge) for edge in spec["edges"]]
    run = start_run(server, "diamond")
    assert run["state"] == "running"
    assert run["nodes"]["extract"]["state"] == "queued"
    assert {run["nodes"][n]["state"] for n in ("left", "right", "join", "report")} == {"waiting"}
    done = run_in(server, run["id"], "succeeded", "failed")
    assert done["state"] == "succeeded"
    jobs = {name: server.job(node["job_id"]) for name, node in done["nodes"].items()}
    assert {(job["workflow_run"], job["node"]) for job in jobs.values()} == {
        (run["id"], name) for name in jobs
    }
    for upstream, downstream in spec["edges"]:
        assert jobs[upstream]["finished_at"] <= jobs[downstream]["started_at"]
    listed = server.client.get("/api/v1/workflow-runs", params={"workflow": "diamond"}).json()
    assert {item["workflow"] for item in listed["items"]} == {"diamond"}
    assert [item["state"] for item in listed["items"] if item["id"] == run["id"]] == ["succeeded"]


def test_a_failure_blocks_downstream_only_and_a_fixed_restart_finishes_the_run(
    server: Server,
) -> None:
    run = start_run(server, "broken")
    failed = run_in(server, run["id"], "failed")
    nodes = {name: node["state"] for name, node in failed["nodes"].items()}
    assert nodes == {
        "first": "succeeded",
        "bad": "failed",
        "after_bad": "upstream_failed",
        "last": "upstream_failed",
        "independent": "succeeded",
    }
    bad = failed["nodes"]["bad"]["job_id"]
    assert server.job(bad)["attempt"] == 3  # its retries were used first

    def told() -> list[dict[str, Any]]:
        query = {"event": "workflow_failed", "run": run["id"]}
        return server.client.get("/api/v1/notifications", params=query).json()["items"]

    notes = wait_for(told, what="the workflow_failed notification")
    assert [n["data"]["run"]["failed_nodes"] for n in notes] == [["bad"]]
    assert notes[0]["status"] == "recorded"  # no channel in this configuration
    # A node's job is not removed alone: the run could never run the node again.
    for force in ("false", "true"):
        removed = server.client.delete(f"/api/v1/jobs/{bad}", params={"force": force})
        assert removed.status_code == 409, removed.text
        assert removed.json()["detail"] == (
            f"job {bad} is node 'bad' of workflow run {run['id']}: a run's jobs are not "
            "removed one by one (retention removes them once the run is not running)"
        )
        assert removed.json()["workflow_run"] == run["id"]
    assert server.client.get(f"/api/v1/workflow-runs/{run['id']}").json() == failed
    fixed = server.client.post(f"/api/v1/jobs/{bad}/restart", json={"args": {"code": 0}})
    assert fixed.status_code == 201, fixed.text
    done = run_in(server, run["id"], "succeeded")
    assert done["nodes"]["bad"]["job_id"] == fixed.json()["id"]
    assert done["nodes"]["bad"]["restarted_from"] == bad
    assert done["nodes"]["last"]["state"] == "succeeded"
    assert done["finished_at"] is not None


def test_retry_failed_restarts_the_failed_nodes(server: Server) -> None:
    run = start_run(server, "broken")
    url = f"/api/v1/workflow-runs/{run['id']}"
    failed = run_in(server, run["id"], "failed")
    told = {"event": "workflow_failed", "run": run["id"]}
    [note] = wait_for(lambda: notes_of(server, **told), what="the workflow_failed notification")
    # The notifications page names the run it is about, not the node it was stored with.
    page = server.client.get("/notifications", params={"event": "workflow_failed"}).text
    row = page[page.index(f'id="note-{note["id"]}"') :].split("</tr>")[0]
    assert f'href="/runs/{run["id"]}"' in row
    assert 'href="/jobs/' not in row
    # A failed run was not stopped: resume is refused and changes nothing, alerts included.
    resumed = server.client.post(f"{url}/resume")
    assert resumed.status_code == 409, resumed.text
    assert resumed.json()["detail"] == (
        f"workflow run {run['id']} is failed: only a stopped run resumes; "
        "a failed run is run again by retry-failed or by restarting a node"
    )
    assert server.client.get(url).json() == failed
    notifier_past_now(server)
    assert len(notes_of(server, **told)) == 1
    retried = server.client.post(f"{url}/retry-failed")
    assert retried.status_code == 200, retried.text
    assert retried.json()["state"] == "running"
    again = run_in(server, run["id"], "failed")  # still code 5: fails again, blocks again
    assert again["nodes"]["bad"]["restarted_from"] is not None
    assert again["nodes"]["last"]["state"] == "upstream_failed"


def test_a_stopped_run_resumes_where_it_stopped(server: Server) -> None:
    run = start_run(server, "slow")
    first = run["nodes"]["a"]["job_id"]
    server.wait_state(first, "running")
    stopped = server.client.post(f"/api/v1/workflow-runs/{run['id']}/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["state"] == "stopped"
    assert stopped.json()["finished_at"] is None  # node a is still being killed
    wait_for(lambda: server.job(first)["state"] == "killed", what="node a killed")
    # A stopped run has ended once none of its nodes is live: retention can remove it.
    halted = wait_for(lambda: ended(server, run["id"]), what="the stopped run to end")
    assert halted["state"] == "stopped"
    ended_at = datetime.fromisoformat(halted["finished_at"])
    assert ended_at >= datetime.fromisoformat(server.job(first)["finished_at"])
    again = server.client.post(f"/api/v1/workflow-runs/{run['id']}/stop")
    assert "is stopped: only a running run stops" in again.json()["detail"]
    assert again.status_code == 409
    resumed = server.client.post(f"/api/v1/workflow-runs/{run['id']}/resume")
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["state"], resumed.json()["finished_at"]) == ("running", None)
    done = run_in(server, run["id"], "succeeded")
    retried = server.client.post(f"/api/v1/workflow-runs/{run['id']}/retry-failed")
    assert retried.status_code == 409
    assert "is succeeded: no node failed, nothing to retry" in retried.json()["detail"]
    assert done["nodes"]["a"]["restarted_from"] == first
    assert done["nodes"]["b"]["state"] == "succeeded"
    assert halted["nodes"]["b"]["state"] == "killed"  # cancelled by the stop, not blocked


def test_resuming_a_stopped_run_leaves_what_a_failure_blocked(
    server: Server, tmp_path: Path
) -> None:
    """Resume runs again what the stop killed, not what a failure blocked: those keep their
    job (no new one, blocked at once) and are told once; the run then ends ``failed``."""
    gate = tmp_path / "open"
    run = start_run(server, "gated", path=str(gate))
    url, nodes = f"/api/v1/workflow-runs/{run['id']}", run["nodes"]
    blocked = nodes["after_bad"]["job_id"]
    server.wait_state(blocked, "upstream_failed")
    server.wait_state(nodes["gate"]["job_id"], "running")
    assert server.client.post(f"{url}/stop").status_code == 200
    server.wait_state(nodes["gate"]["job_id"], "killed")
    wait_for(lambda: ended(server, run["id"]), what="the stopped run to end")
    resumed = server.client.post(f"{url}/resume")
    assert resumed.status_code == 200, resumed.text
    again = resumed.json()["nodes"]
    assert again["after_bad"] == nodes["after_bad"] | {"state": "upstream_failed"}
    assert again["bad"]["job_id"] == nodes["bad"]["job_id"]
    assert again["gate"]["restarted_from"] == nodes["gate"]["job_id"]
    gate.touch()
    done = run_in(server, run["id"], "failed")
    assert done["nodes"]["after_gate"]["state"] == "succeeded"
    assert done["finished_at"] is not None
    told = {"event": "workflow_failed", "run": run["id"]}
    notes = wait_for(lambda: notes_of(server, **told), what="the workflow_failed notification")
    assert [note["data"]["run"]["failed_nodes"] for note in notes] == [["bad"]]
    notifier_past_now(server)
    assert len(notes_of(server, **told)) == 1
    assert len(notes_of(server, event="upstream_failed", job=blocked)) == 1


def test_a_stopped_run_sends_no_notification(server: Server) -> None:
    run = start_run(server, "chain")
    first = run["nodes"]["a"]["job_id"]
    server.wait_state(first, "running")
    stopped = server.client.post(f"/api/v1/workflow-runs/{run['id']}/stop")
    assert stopped.status_code == 200, stopped.text
    server.wait_state(first, "killed")
    halted = run_in(server, run["id"], "stopped")
    # The stop ended every node itself: none is blocked by a node it killed.
    assert {node["state"] for node in halted["nodes"].values()} == {"killed"}
    notifier_past_now(server)
    assert notes_of(server, run=run["id"]) == []


def test_retry_failed_refuses_a_stopped_run_and_a_run_with_nothing_failed(
    server: Server,
) -> None:
    run = start_run(server, "chain")
    url = f"/api/v1/workflow-runs/{run['id']}"
    server.wait_state(run["nodes"]["a"]["job_id"], "running")
    early = server.client.post(f"{url}/retry-failed")
    assert early.status_code == 409, early.text
    assert early.json()["detail"] == (
        f"workflow run {run['id']} is running: no node failed, nothing to retry"
    )
    assert server.client.post(f"{url}/stop").status_code == 200
    server.wait_state(run["nodes"]["a"]["job_id"], "killed")
    before = wait_for(lambda: ended(server, run["id"]), what="the stopped run to end")
    assert before["state"] == "stopped"
    retried = server.client.post(f"{url}/retry-failed")
    assert retried.status_code == 409, retried.text
    assert retried.json()["detail"] == (
        f"workflow run {run['id']} is stopped: a stopped run is resumed, not retried"
    )
    assert server.client.get(url).json() == before  # nothing changed


def test_a_running_node_is_not_force_removed(server: Server) -> None:
    run = start_run(server, "chain")
    first = run["nodes"]["a"]["job_id"]
    server.wait_state(first, "running")
    removed = server.client.delete(f"/api/v1/jobs/{first}", params={"force": "true"})
    assert removed.status_code == 409, removed.text
    assert removed.json()["detail"].endswith("; to end it, kill it or stop the run")
    assert server.job(first)["control"] is None  # not asked to die either
    assert server.client.post(f"/api/v1/workflow-runs/{run['id']}/stop").status_code == 200


def test_workflow_errors(server: Server) -> None:
    assert server.client.get("/api/v1/workflows/nope").status_code == 404
    assert server.client.post("/api/v1/workflows/nope/runs").status_code == 404
    assert server.client.get("/api/v1/workflow-runs/999").status_code == 404
    bad = server.client.post("/api/v1/workflows/broken/runs", json={"args": {"code": "x"}})
    assert bad.status_code == 422
    runs_before = server.client.get("/api/v1/workflow-runs").json()["total"]
    # An argument no node's type declares is refused, as in the file (a typo, most likely).
    typo = server.client.post("/api/v1/workflows/broken/runs", json={"args": {"cod": 1, "code": 0}})
    assert typo.status_code == 422
    assert typo.json()["errors"] == [
        {
            "field": "args.cod",
            "location": "body",
            "message": "no node's job type declares this param; did you mean 'code'?",
        }
    ]
    assert server.client.get("/api/v1/workflow-runs").json()["total"] == runs_before
    names = [w["name"] for w in server.client.get("/api/v1/workflows").json()["items"]]
    assert names == ["broken", "chain", "crashy", "diamond", "gated", "pair", "slow", "sturdy"]


def test_the_global_stream_tells_of_runs_and_their_nodes(server: Server) -> None:
    collected: list[Any] = []
    ready = threading.Event()

    mark = server.last_event_id()  # the server is shared: what earlier tests did is before it

    def listen() -> None:
        with server.client.stream("GET", f"/api/v1/events?after={mark}") as response:
            ready.set()
            stop = lambda e: e.event == "workflow_finished"  # noqa: E731
            collected.extend(read_sse(response.iter_lines(), stop=stop))

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(10)
    wait_for(lambda: server.subscribers() >= 1)
    run = start_run(server, "diamond")
    thread.join(60)
    assert not thread.is_alive()
    node_jobs = {node["job_id"] for node in run["nodes"].values()}
    collected = [  # and only this run's events: late ones of earlier tests may come
        e
        for e in collected
        if e.data.get("run_id") == run["id"] or e.data.get("job_id") in node_jobs
    ]
    kinds = [event.event for event in collected]
    assert kinds[0] == "job_created"  # the nodes are created first, then the run is announced
    started = [e for e in collected if e.event == "workflow_started"]
    assert [e.data["run_id"] for e in started] == [run["id"]]
    nodes = {e.data["node"] for e in collected if e.event == "workflow_node_state"}
    assert nodes == {"extract", "left", "right", "join", "report"}
    finished = collected[-1].data
    assert finished["run_id"] == run["id"]
    assert finished["state"] == "succeeded"
    assert finished["workflow"] == "diamond"


def test_a_runs_stream_tells_its_changes_then_closes_with_how_it_ended(
    server: Server, tmp_path: Path
) -> None:
    gate = tmp_path / "open"
    mark = server.last_event_id()  # before the run: its stream replays what came after
    run = start_run(server, "gated", path=str(gate))
    others = [server.submit("echo", args={"text": "before the stream"})["id"]]
    path = f"/api/v1/workflow-runs/{run['id']}/events"
    events = []
    with server.client.stream("GET", path, headers={"Last-Event-ID": str(mark)}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        for event in read_sse(lines):
            events.append(event)
            if (event.data.get("node"), event.data.get("state")) == ("gate", "running"):
                others.append(server.submit("echo", args={"text": "live"})["id"])
                gate.touch()  # the run can end now, and not before
        assert [line for line in lines if line] == []  # it ended at close
    *told, close = events
    assert (close.event, close.id, close.data) == (
        "close",
        None,
        {"run_id": run["id"], "state": "failed"},
    )
    # only this run's events (replayed and live), named and shaped as on the global stream
    assert not set(others) & {e.data["job_id"] for e in told}
    assert all(e.data.get("workflow_run", e.data.get("run_id")) == run["id"] for e in told)
    created = {e.data["node"] for e in told if e.event == "job_created"}
    assert created == {"bad", "after_bad", "gate", "after_gate"}
    states = {(e.data["node"], e.data["state"]) for e in told if e.event == "workflow_node_state"}
    assert {("bad", "failed"), ("after_bad", "upstream_failed"), ("gate", "succeeded")} <= states
    assert [e.id for e in told] == sorted(e.id for e in told if e.id is not None)
    assert told[-1].event == "workflow_finished"  # the run's own end comes before the close
    assert told[-1].data["state"] == "failed"
    # A reconnection once the run has ended gets what it missed, then the close.
    middle = told[len(told) // 2]
    with server.client.stream("GET", path, headers={"Last-Event-ID": str(middle.id)}) as response:
        again = list(read_sse(response.iter_lines()))
    assert [(e.event, e.id) for e in again[:-1]] == [
        (e.event, e.id) for e in told[len(told) // 2 + 1 :]
    ]
    assert (again[-1].event, again[-1].data) == (close.event, close.data)


def test_a_replayed_stream_of_a_run_reopened_goes_on_past_its_first_end(
    server: Server, tmp_path: Path
) -> None:
    gate = tmp_path / "open"
    gate.touch()
    run = start_run(server, "gated", path=str(gate))
    url = f"/api/v1/workflow-runs/{run['id']}"
    run_in(server, run["id"], "failed")
    assert server.client.post(f"{url}/retry-failed").status_code == 200
    # Replayed from its start while it runs again (or once it failed again): the first
    # end is passed by, and the stream closes at the second.
    with server.client.stream("GET", f"{url}/events", headers={"Last-Event-ID": "0"}) as response:
        events = [(e.event, e.data.get("state")) for e in read_sse(response.iter_lines())]
    runs = [e for e in events if e[0].startswith("workflow_") and e[0] != "workflow_node_state"]
    assert runs[:3] == [
        ("workflow_started", None),
        ("workflow_finished", "failed"),
        ("workflow_reopened", "running"),
    ]
    # The second end closes it (its workflow_finished may come after the close: a stream
    # that is idle between the run's end and that event closes on the run read then).
    assert runs[3:] in ([("workflow_finished", "failed")], [])
    assert events[-1] == ("close", "failed")


def test_a_runs_stream_closes_when_the_run_is_stopped_or_has_ended(server: Server) -> None:
    run = start_run(server, "chain")
    path = f"/api/v1/workflow-runs/{run['id']}/events"
    closed: list[Any] = []

    def listen() -> None:
        with server.client.stream("GET", path) as response:
            closed.extend(e for e in read_sse(response.iter_lines()) if e.event == "close")

    wait_for(lambda: server.subscribers() == 0, what="earlier tests' streams to be freed")
    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    wait_for(lambda: server.subscribers() == 1, what="the run's stream to follow it")
    server.wait_state(run["nodes"]["a"]["job_id"], "running")
    assert server.client.post(f"{path.removesuffix('/events')}/stop").status_code == 200
    thread.join(60)
    assert not thread.is_alive()
    assert [e.data for e in closed] == [{"run_id": run["id"], "state": "stopped"}]
    # a run that is not running closes its stream at once, after the place it started from
    with server.client.stream("GET", path) as response:
        lines = list(response.iter_lines())
    assert lines[0] == ": from now"
    assert 0 < int(lines[1].removeprefix("id: ")) <= server.last_event_id()
    assert [(e.event, e.data) for e in read_sse(iter(lines))] == [
        ("close", {"run_id": run["id"], "state": "stopped"})
    ]
    missing = server.client.get("/api/v1/workflow-runs/999999/events")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["detail"] == "no workflow run with id 999999"


def test_a_stopped_runs_stream_closes_once_its_last_node_has_died(server: Server) -> None:
    """A stop kills the nodes: one dies at once, one only after its kill grace; the stream
    tells both deaths before its close, which says how the run ended."""
    run = start_run(server, "pair")
    path = f"/api/v1/workflow-runs/{run['id']}/events"
    jobs = {name: node["job_id"] for name, node in run["nodes"].items()}
    for job_id in jobs.values():
        server.wait_state(job_id, "running")
    events: list[Any] = []
    with server.client.stream("GET", path) as response:
        lines = response.iter_lines()
        assert next(lines) == ": from now"  # the stream's place is taken: nothing is missed
        stop = server.client.post(f"/api/v1/workflow-runs/{run['id']}/stop")
        assert stop.status_code == 200, stop.text
        events.extend(read_sse(lines))
    *told, close = events
    ends = {e.data["node"]: e.data["state"] for e in told if e.data.get("state") == "killed"}
    assert ends == {"quick": "killed", "stubborn": "killed"}
    assert (close.event, close.data) == ("close", {"run_id": run["id"], "state": "stopped"})
    assert all(server.job(job_id)["state"] == "killed" for job_id in jobs.values())


def test_run_wait_follows_the_runs_stream_and_exits_as_the_run_ended(
    server: Server, tmp_path: Path
) -> None:
    gate = tmp_path / "open"
    wait_for(lambda: server.subscribers() == 0, what="earlier tests' streams to be freed")
    command = [sys.executable, "-m", "jobyard", "run", "gated", f"path={gate}", "--wait", "--json"]
    env = os.environ | {"JOBYARD_SERVER": server.url}
    cli = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: server.subscribers() == 1, what="the CLI to follow the run's stream")
        assert cli.poll() is None  # the run cannot end before the gate opens: it waits
        gate.touch()
        listed = server.client.get("/api/v1/workflow-runs", params={"workflow": "gated"}).json()
        run_id = max(item["id"] for item in listed["items"])
        ended = run_in(server, run_id, "failed")
        out, err = cli.communicate(timeout=60)
    finally:
        cli.kill()
    assert cli.returncode == 1, err  # the run failed
    shown = json.loads(out)
    # the run as stored at its end: the CLI returned once the end was stored, not before
    assert (shown["id"], shown["state"]) == (run_id, "failed")
    assert ended["finished_at"] is not None
    assert shown["finished_at"] == ended["finished_at"]
    assert shown["nodes"] == ended["nodes"]
    assert shown["nodes"]["after_gate"]["state"] == "succeeded"
    assert f"[run {run_id}] after_gate: succeeded" in err.splitlines()  # told as it went
    wait_for(lambda: server.subscribers() == 0, what="the CLI's stream to be let go")


def test_the_cli_runs_and_shows_workflows(server: Server) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = os.environ | {"JOBYARD_SERVER": server.url}
        return subprocess.run(
            [sys.executable, "-m", "jobyard", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    before = int(cli("runs", "list").stdout.split()[-2])
    listed = cli("workflows")
    assert listed.returncode == 0, listed.stderr
    assert "join (echo)  after left, right" in listed.stdout
    done = cli("run", "diamond", "--wait")
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout.splitlines()[0]
    assert done.stdout.splitlines()[1].startswith("ended ")
    failed = cli("run", "broken", "--wait", "--json")
    assert failed.returncode == 1
    run_id = json.loads(failed.stdout)["id"]
    shown = cli("runs", "show", str(run_id))
    assert "upstream_failed" in shown.stdout
    assert cli("runs", str(run_id)).stdout == shown.stdout  # a bare id shows it too
    assert cli("runs").stdout == cli("runs", "list").stdout  # and a bare group lists
    assert cli("runs", "retry", str(run_id)).returncode == 0
    chain = json.loads(cli("run", "chain", "--json").stdout)["id"]
    stopped = cli("runs", "stop", str(chain))
    assert stopped.returncode == 0, stopped.stderr

    def ended_line() -> str | None:
        """The line of ``runs show`` that says when the stopped run ended, once it has."""
        lines = cli("runs", "show", str(chain)).stdout.splitlines()
        return lines[1] if lines[1].startswith("ended ") else None

    wait_for(ended_line, what="the stopped run to show its end")
    listed = cli("runs", "list", "--state", "stopped").stdout.splitlines()
    assert " → " in next(line for line in listed if line.split()[0] == str(chain))
    assert cli("runs", "list").stdout.splitlines()[-1] == f"{before + 3} runs"


def test_a_crash_in_the_middle_of_a_run_loses_nothing(database_url: str, launch: Launcher) -> None:
    first = launch(database_url)
    run = start_run(first, "crashy")
    node_b = run["nodes"]["b"]["job_id"]
    first.wait_state(node_b, "running")
    first.crash()  # kill -9 while b runs
    again = launch(database_url)
    done = run_in(again, run["id"], "succeeded")
    assert again.job(node_b)["attempt"] == 2  # b ran again: it had a retry left
    node_a = again.job(done["nodes"]["a"]["job_id"])
    assert node_a["attempt"] == 1  # a had succeeded: it did not run twice
    jobs = again.client.get("/api/v1/jobs", params={"search": "crashy.a"}).json()
    assert jobs["total"] == 1
    assert done["nodes"]["c"]["state"] == "succeeded"
