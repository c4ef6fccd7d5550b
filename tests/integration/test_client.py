"""The Python client against a real server: every method, typed results, errors.

One server on SQLite serves the module; each test finds its own jobs by a
unique tag in their names.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from jobyard.client import (
    ApiError,
    Client,
    Conflict,
    Dependency,
    Event,
    Invalid,
    JobInfo,
    NotFound,
    ServerUnreachable,
)
from jobyard.client.models import Progress, Resources
from tests.harness import Server, free_port, shared_server, wait_for

server = shared_server(backends=["sqlite"])


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, poll_interval=0.05, reconnect_delay=0.05) as client:
        yield client


def tag() -> str:
    return uuid.uuid4().hex[:10]


def until_state(client: Client, job_id: int, *states: str) -> JobInfo:
    def probe() -> JobInfo | None:
        job = client.job(job_id)
        return job if job.state in states else None

    return wait_for(probe, what=f"job {job_id} to be {'/'.join(states)}")


def test_health(client: Client) -> None:
    health = client.health()
    assert health["status"] == "ok"
    assert health["database"] == "sqlite"


def test_one_workflow_and_the_notification_channels(client: Client) -> None:
    diamond = client.workflow("diamond")
    assert diamond == next(item for item in client.workflows() if item["name"] == "diamond")
    assert diamond["nodes"][0]["name"] == "extract"
    with pytest.raises(NotFound):
        client.workflow("nope")
    section = client.notification_channels()  # the tests' configuration has none
    assert (section["channels"], section["rules"]) == ({}, [])
    assert section["retry"]["max_attempts"] == 5


def test_submit_returns_the_whole_job(client: Client) -> None:
    name = tag()
    run_at = datetime.now(UTC) + timedelta(hours=1)
    job = client.submit("echo", {"text": "hi"}, priority=3, run_at=run_at, name=name)
    assert isinstance(job, JobInfo)
    assert (job.type, job.name, job.priority, job.queue) == ("echo", name, 3, "default")
    assert job.state == "scheduled"
    assert job.args == {"text": "hi", "repeat": 1}
    assert job.command == ["echo", "hi"]
    assert job.kind == "command"
    assert job.run_at == run_at
    assert isinstance(job.created_at, datetime)
    assert job.created_at.tzinfo is not None
    assert job.progress == Progress()
    assert isinstance(job.resources, Resources)
    assert job.resources.runtime_seconds is None
    assert not job.terminal
    assert client.job(job.id) == job
    client.kill(job.id)


def test_an_idempotency_key_returns_the_first_job(client: Client) -> None:
    key = tag()
    first = client.submit("echo", {"text": "a"}, hold=True, idempotency_key=key)
    again = client.submit("echo", {"text": "a"}, hold=True, idempotency_key=key)
    assert again.id == first.id
    assert again.idempotency_key == key
    other = tag()
    new = client.submit_once("echo", {"text": "a"}, hold=True, idempotency_key=other)
    repeated = client.submit_once("echo", {"text": "a"}, hold=True, idempotency_key=other)
    assert (new[1], repeated[1], repeated[0].id) == (True, False, new[0].id)
    assert client.submit_once("echo", {"text": "a"}, idempotency_key=key) == (
        client.job(first.id),
        False,
    )


def test_submit_many_creates_all_or_none(client: Client) -> None:
    name = tag()
    jobs = client.submit_many(
        [{"type": "echo", "args": {"text": str(i)}, "hold": True, "name": name} for i in range(3)]
    )
    assert [job.args["text"] for job in jobs] == ["0", "1", "2"]
    assert all(job.state == "held" for job in jobs)
    with pytest.raises(Invalid) as caught:
        client.submit_many(
            [
                {"type": "echo", "args": {"text": "x"}, "name": name},
                {"type": "echo", "args": {"repeat": 0}, "name": name},
            ]
        )
    fields = {error["field"] for error in caught.value.errors}
    assert {"jobs.1.args.text", "jobs.1.args.repeat"} <= fields
    assert client.jobs(search=name).total == 3


def test_jobs_filter_sort_page_and_iterate(client: Client) -> None:
    name = tag()
    held = [client.submit("echo", {"text": name}, hold=True, name=name) for _ in range(5)]
    sleeper = client.submit("sleep", {"seconds": 30}, hold=True, name=name)
    client.kill(held[0].id)

    page = client.jobs(search=name, per_page=2, sort="id")
    assert (page.total, page.page, page.per_page, page.pages) == (6, 1, 2, 3)
    assert [job.id for job in page.items] == [held[0].id, held[1].id]
    assert client.jobs(search=name, state="killed").total == 1
    assert client.jobs(search=name, state=["held", "killed"]).total == 6
    assert [j.id for j in client.jobs(search=name, type="sleep").items] == [sleeper.id]
    assert client.jobs(search=name, queue=["default"]).total == 6
    assert client.jobs(search=name, queue="elsewhere").total == 0
    everything = list(client.iter_jobs(search=name, sort="-id", per_page=2))
    assert [job.id for job in everything] == sorted((j.id for j in [*held, sleeper]), reverse=True)


def test_submit_with_dependencies_and_see_them(client: Client) -> None:
    first = client.submit("echo", {"text": "a"}, hold=True)
    second = client.submit("echo", {"text": "b"}, hold=True)
    third = client.submit("echo", {"text": "c"}, hold=True)
    after = [first.id, Dependency(second.id, on="failed"), {"job": third.id, "on": "finished"}]
    name = tag()
    job = client.submit("echo", {"text": "d"}, name=name, depends_on=after)
    assert job.state == "waiting"
    assert client.job(job.id).depends_on == [
        Dependency(first.id, "succeeded", "held"),
        Dependency(second.id, "failed", "held"),
        Dependency(third.id, "finished", "held"),
    ]
    [listed] = client.jobs(search=name).items
    assert listed.depends_on == []  # a listing leaves them out
    client.kill(first.id)  # it had to succeed
    assert client.wait(job.id, timeout=30).state == "upstream_failed"
    client.kill(second.id)
    client.kill(third.id)
    downstream = {"type": "echo", "args": {"text": "e"}, "depends_on": [job.id]}
    [batched] = client.submit_many([downstream])
    assert client.job(batched.id).depends_on == [Dependency(job.id, "succeeded", "upstream_failed")]


def test_a_job_shows_its_sla(client: Client) -> None:
    name = f"budgeted-{tag()}"
    sla = {"max_runtime": "1h", "on_breach": "kill"}
    client.put_job_type(name, {"command": ["echo", "ok"], "sla": sla})
    job = client.submit(name)
    assert job.sla is not None
    assert (job.sla["max_runtime"], job.sla["on_breach"]) == (3600, "kill")
    assert client.job(job.id).sla == job.sla
    assert client.submit("echo", {"text": "x"}, hold=True).sla is None


def test_controls_on_a_sleeping_job(client: Client) -> None:
    job = client.submit("sleep", {"seconds": 30}, hold=True)
    assert client.start(job.id).state in {"queued", "running"}
    until_state(client, job.id, "running")
    paused = client.pause(job.id)
    assert paused.control == "pause" or paused.state == "paused"
    until_state(client, job.id, "paused")
    with pytest.raises(Conflict) as caught:
        client.pause(job.id)
    assert caught.value.state == "paused"
    assert caught.value.status == 409
    client.resume(job.id)
    until_state(client, job.id, "running")
    killed = client.kill(job.id)
    assert killed.control == "kill" or killed.state == "killed"
    ended = client.wait(job.id, timeout=30)
    assert ended.state == "killed"
    assert ended.failed
    assert ended.terminal


def test_pause_of_a_pending_job_holds_it_and_resume_releases_it(client: Client) -> None:
    job = client.submit("echo", {"text": "x"}, run_at=datetime.now(UTC) + timedelta(hours=1))
    assert client.pause(job.id).state == "held"
    assert client.resume(job.id).state == "scheduled"
    assert client.kill(job.id).state == "killed"


def test_restart_and_remove(client: Client) -> None:
    job = client.submit("echo", {"text": "one"})
    client.wait(job.id, timeout=30)
    again = client.restart(job.id, {"text": "two"})
    assert again.id != job.id
    assert again.restarted_from == job.id
    assert again.args["text"] == "two"
    assert client.job(job.id).restarted_as == again.id
    assert client.wait(again.id, timeout=30).state == "succeeded"
    assert [line.line for line in client.iter_logs(again.id) if line.stream == "stdout"] == ["two"]
    client.remove(job.id)
    with pytest.raises(NotFound):
        client.job(job.id)

    live = client.submit("sleep", {"seconds": 30})
    until_state(client, live.id, "running")
    with pytest.raises(Conflict):
        client.remove(live.id)
    client.remove(live.id, force=True)
    with pytest.raises(NotFound):
        client.job(live.id)


def test_logs_page_by_page(client: Client) -> None:
    job = client.submit("lines", {"count": 5})
    assert client.wait(job.id, timeout=30).state == "succeeded"
    first = client.logs(job.id, limit=3)
    assert len(first.items) == 3
    assert first.state == "succeeded"
    assert first.next_after == first.items[-1].seq
    rest = client.logs(job.id, after=first.next_after)
    every = list(client.iter_logs(job.id))
    assert every == first.items + rest.items
    assert [line.line for line in every if line.stream == "stdout"] == [
        f"line {i}" for i in range(5)
    ]
    assert [line.line for line in every if line.stream == "stderr"] == [
        f"err {i}" for i in range(5)
    ]
    assert [line.seq for line in every] == sorted({line.seq for line in every})
    assert isinstance(every[0].at, datetime)


def test_follow_logs_streams_until_the_job_ends(client: Client) -> None:
    job = client.submit("lines", {"count": 40})
    lines = list(client.follow_logs(job.id))
    assert [line.line for line in lines if line.stream == "stdout"] == [
        f"line {i}" for i in range(40)
    ]
    assert lines == list(client.iter_logs(job.id))
    later = list(client.follow_logs(job.id, after=lines[9].seq))
    assert later == lines[10:]


def test_events_of_a_job_end_with_close(client: Client) -> None:
    job = client.submit("lines", {"count": 3})
    events = list(client.events(job.id))
    assert all(isinstance(event, Event) for event in events)
    assert events[-1].kind == "close"
    assert events[-1].data == {"job_id": job.id, "state": "succeeded"}
    assert events[-1].id is None
    ids = [event.id or 0 for event in events[:-1]]
    assert all(event.id for event in events[:-1])
    assert ids == sorted(ids)
    states = [event.data["state"] for event in events if event.kind == "state"]
    assert states == ["queued", "running", "succeeded"]
    assert all(event.job_id == job.id and "at" in event.data for event in events[:-1])
    resumed = list(client.events(job.id, last_event_id=ids[2]))
    assert [event.id for event in resumed] == [*ids[3:], None]


def test_submit_and_follow(client: Client) -> None:
    events = list(client.submit_and_follow("echo", {"text": "followed"}, name=tag()))
    first, last = events[0], events[-1]
    assert (first.kind, first.data["state"]) == ("state", "queued")
    assert [e.data["line"] for e in events if e.kind == "log" and e.data["stream"] == "stdout"] == [
        "followed"
    ]
    assert (last.kind, last.data["state"]) == ("close", "succeeded")
    job = client.job(first.data["job_id"])
    assert job.state == "succeeded"
    assert job.idempotency_key  # made up, so that a retried submission is not doubled


def test_progress_and_metric_events(client: Client) -> None:
    events = list(client.submit_and_follow("progress"))
    progress = [e.data for e in events if e.kind == "progress"]
    assert progress[0]["fraction"] == 0.5
    assert progress[0]["message"] == "half way"
    assert {"name": "rows", "value": 42} in [
        {"name": e.data["name"], "value": e.data["value"]} for e in events if e.kind == "metric"
    ]


def test_wait_returns_the_ended_job_or_times_out(client: Client) -> None:
    failing = client.submit("fail", {"code": 4})
    ended = client.wait(failing.id, timeout=30)
    assert (ended.state, ended.exit_code, ended.attempt) == ("failed", 4, 3)
    assert client.wait(failing.id).state == "failed"  # already ended: at once

    sleeper = client.submit("sleep", {"seconds": 30})
    with pytest.raises(TimeoutError):
        client.wait(sleeper.id, timeout=0.5)
    client.kill(sleeper.id)
    assert client.wait(sleeper.id, timeout=30).state == "killed"


def test_all_events_tell_of_every_job(client: Client) -> None:
    job = client.submit("echo", {"text": "global"})
    client.wait(job.id, timeout=30)
    seen: list[Event] = []
    for event in client.all_events(job=job.id, last_event_id=0):
        seen.append(event)
        if event.kind == "job_terminated":
            break
    kinds = [event.kind for event in seen]
    assert kinds[0] == "job_created"
    assert "job_state" in kinds
    terminated = seen[-1].data
    assert (terminated["job_id"], terminated["type"], terminated["state"]) == (
        job.id,
        "echo",
        "succeeded",
    )
    assert terminated["exit_code"] == 0
    # filtered by type: another type's job is not told of
    for event in client.all_events(type="echo", last_event_id=seen[0].id):
        assert event.data["type"] == "echo"
        if event.kind == "job_terminated":
            break


def test_job_types(client: Client) -> None:
    names = [t.name for t in client.job_types()]
    assert {"echo", "sleep", "py-count"} <= set(names)
    echo = client.job_type("echo")
    assert echo.params["required"] == ["text"]
    assert echo.defaults == {"repeat": 1}
    assert (echo.kind, echo.source) == ("command", "config")

    name = f"greet-{tag()}"
    definition = {
        "command": ["echo", "hello", "{who}"],
        "params": {"who": {"type": "string", "default": "world"}},
    }
    created = client.put_job_type(name, definition)
    assert (created.name, created.source, created.defaults) == (name, "api", {"who": "world"})
    with pytest.raises(Conflict):
        client.create_job_type({"name": name, **definition})
    job = client.submit(name)
    assert client.wait(job.id, timeout=30).state == "succeeded"
    assert [line.line for line in client.iter_logs(job.id)][-1] == "hello world"
    client.delete_job_type(name)
    with pytest.raises(NotFound):
        client.job_type(name)
    other = client.create_job_type({"name": f"{name}-2", **definition})
    assert other.source == "api"


def test_problems_become_typed_errors(client: Client) -> None:
    with pytest.raises(NotFound) as missing:
        client.job(999_999)
    assert missing.value.status == 404
    assert "999999" in missing.value.detail
    with pytest.raises(Invalid) as invalid:
        client.submit("no-such-type")
    assert invalid.value.status == 422
    assert invalid.value.errors[0]["field"] == "type"
    assert "type: unknown job type" in str(invalid.value)
    with pytest.raises(Invalid):
        client.jobs(sort="password")
    with pytest.raises(NotFound):
        list(client.events(999_999))
    with pytest.raises(NotFound):
        list(client.follow_logs(999_999))
    job = client.submit("echo", {"text": "x"})
    client.wait(job.id, timeout=30)
    with pytest.raises(Conflict) as conflict:
        client.resume(job.id)
    assert isinstance(conflict.value, ApiError)
    assert conflict.value.state == "succeeded"
    assert conflict.value.title


def test_an_unreachable_server() -> None:
    with Client(f"127.0.0.1:{free_port()}", timeout=5) as client:
        assert client.server.startswith("http://")
        with pytest.raises(ServerUnreachable, match="cannot reach"):
            client.health()


def test_a_name_is_one_path_segment_and_reaches_no_other_resource(
    client: Client, server: Server
) -> None:
    # Sent as written, "../schedules/x" deleted the schedule x and said a type was gone.
    kind = f"kind-{tag()}"
    client.put_job_type(kind, {"command": ["true"]})
    schedule = f"every-{tag()}"
    every = {"name": schedule, "job_type": kind, "every": "1h"}
    server.client.post("/api/v1/schedules", json=every).raise_for_status()
    for name in (f"../schedules/{schedule}", "../jobs", "..", ".", "a?b=c", "a/b", "a#b"):
        with pytest.raises((NotFound, Invalid)):
            client.job_type(name)
        with pytest.raises((NotFound, Invalid)):
            client.delete_job_type(name)
    for name in (f"../job-types/{kind}", "../jobs"):
        with pytest.raises((NotFound, Invalid)):
            client.schedule(name)
        with pytest.raises((NotFound, Invalid)):
            client.delete_schedule(name)
        with pytest.raises((NotFound, Invalid)):
            client.remove_user(name)
    assert client.job_type(kind).name == kind
    assert client.schedule(schedule).name == schedule
