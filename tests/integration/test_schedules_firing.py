"""Schedules fire jobs and workflow runs; with two servers on PostgreSQL, one leads."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import DBAPIError

from jobyard.dependencies import Dependencies
from jobyard.errors import Conflict, NotFound
from jobyard.jobtypes.catalog import Catalog
from jobyard.jobtypes.spec import parse_job_type
from jobyard.manager import JobManager
from jobyard.models import JobQuery, JobUpdate
from jobyard.schedules.book import Entry, ScheduleBook
from jobyard.schedules.due import parse_schedule
from jobyard.schedules.firing import Firing
from jobyard.schedules.leader import Leadership
from jobyard.schedules.scheduler import Scheduler
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.workflows.parse import parse_workflows
from jobyard.workflows.runs import Runs
from tests.databases import Servers
from tests.harness import FIXTURES, Launcher, Server, wait_for

CONFIG = FIXTURES / "schedules.yaml"


def fired_jobs(server: Server) -> list[dict[str, Any]]:
    query = {"search": "every-second", "type": "note", "per_page": 500, "sort": "id"}
    items: list[dict[str, Any]] = server.client.get("/api/v1/jobs", params=query).json()["items"]
    return [job for job in items if job["name"] == "every-second"]


def leading(server: Server) -> float:
    """``jobyard_scheduler_leading`` of the node's ``/metrics``."""
    scraped = server.client.get("/metrics").text
    [family] = [
        family
        for family in text_string_to_metric_families(scraped)
        if family.name == "jobyard_scheduler_leading"
    ]
    return float(family.samples[0].value)


def is_leader(server: Server) -> bool:
    leads: bool = server.client.get("/healthz").json()["scheduler_leader"]
    return leads


T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
TYPES = {"note": parse_job_type("note", {"command": ["true"]})}


@pytest.fixture
def sql_store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


def firing_of(store: Store, target: dict[str, str], **options: str) -> tuple[Firing, Runs]:
    """A schedule firing ``target`` every 10 s from T0, driven by the times passed in."""
    clock = lambda: T0  # noqa: E731
    manager = JobManager(store, Catalog(store, TYPES), Dependencies(store), clock=clock)
    workflows = parse_workflows({"pair": {"nodes": {"one": {"type": "note"}}}}, TYPES)
    runs = Runs(manager, workflows, clock=clock)
    spec = parse_schedule("tick", {**target, "every": "10s", **options})
    book = ScheduleBook(store, {"tick": spec}, manager.catalog, workflows)
    return Firing(manager, runs, book, clock=clock), runs


@pytest.mark.parametrize("target", [{"job_type": "note"}, {"workflow": "pair"}], ids=str)
def test_overlap_skip_skips_every_fire_while_the_last_started_run_lives(
    sql_store: Store, target: dict[str, str]
) -> None:
    """A run lasting 2.5 periods: the two fires after it are both skipped, not one."""
    firing, runs = firing_of(sql_store, target)

    def fire_at(seconds: int) -> bool:
        """Pass at T0 + seconds; whether that fire started a job or run."""
        firing.run_once(T0 + timedelta(seconds=seconds))
        started = sql_store.schedules.last_started_fire("tick")
        return started is not None and started.fire_time == T0 + timedelta(seconds=seconds)

    def end_last_run() -> None:
        started = sql_store.schedules.last_started_fire("tick")
        assert started is not None
        if started.run_id is not None:
            runs.stop(started.run_id)
            return
        assert started.job_id is not None
        ended = JobUpdate(started.job_id, frozenset(JobState), {"state": JobState.SUCCEEDED})
        sql_store.jobs.update_job(ended, T0)

    assert [fire_at(10), fire_at(20), fire_at(30)] == [True, False, False]
    end_last_run()
    assert [fire_at(40), fire_at(50)] == [True, False]


@pytest.mark.parametrize("target", [{"job_type": "note"}, {"workflow": "pair"}], ids=str)
@pytest.mark.parametrize("checks", [0.0, 3600.0], ids=["lease-checked", "lapsed-since-check"])
def test_a_fire_is_not_skipped_for_a_run_whose_worker_was_lost(
    sql_store: Store, target: dict[str, str], checks: float
) -> None:
    """The last run's job, on a worker lost at a crash: recovered before the fire, which
    starts a run. A job whose lease holds still counts as going (its worker may live)."""
    firing, runs = firing_of(sql_store, target)

    def ended(job_id: int) -> None:
        runs.jobs_ended(sql_store.jobs.jobs_by_id([job_id]))

    scheduler = Scheduler(sql_store, firing=firing, lease_check_every=checks, on_terminal=ended)

    def claim(seconds: int, lease: int) -> None:
        """The queued job, run at T0 + seconds by a worker whose lease lasts ``lease`` s."""
        at = T0 + timedelta(seconds=seconds)
        claimed = sql_store.queue.claim_jobs("w", "h", None, 5, at, at + timedelta(seconds=lease))
        assert len(claimed.jobs) == 1

    def started_at(seconds: float) -> bool:
        """Passes at T0 + seconds (and half a second later); whether it started a run."""
        for pass_at in (seconds, seconds + 0.5):
            scheduler.run_once(T0 + timedelta(seconds=pass_at))
        fire = sql_store.schedules.last_fire("tick")
        assert fire is not None
        assert fire.fire_time == T0 + timedelta(seconds=seconds)
        return fire.job_id is not None or fire.run_id is not None

    assert started_at(10)
    claim(11, lease=4)  # lapses at 15; its worker is gone
    assert started_at(20)
    claim(21, lease=60)  # holds past the next fire
    assert not started_at(30)  # skipped: its worker may be alive
    lost = sql_store.jobs.list_jobs(JobQuery(states=[JobState.FAILED]))[0]
    assert [job.reason for job in lost] == ["worker_lost"]


@contextmanager
def refusing_inserts(store: Store, table: str) -> Iterator[None]:
    """Every insert into ``table`` fails, as a write does while the database is away."""
    dialect = store.engine.dialect.name
    refuse = {
        "sqlite": [
            f"CREATE TRIGGER refuse BEFORE INSERT ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ],
        "postgresql": [
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
            f"CREATE TRIGGER refuse BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse()",
        ],
        "mysql": [
            f"CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'"
        ],
    }[dialect]
    accept = [f"DROP TRIGGER refuse ON {table}", "DROP FUNCTION refuse()"]
    with store.engine.begin() as conn:
        for statement in refuse:
            conn.exec_driver_sql(statement)
    try:
        yield
    finally:
        with store.engine.begin() as conn:
            for statement in accept if dialect == "postgresql" else ["DROP TRIGGER refuse"]:
                conn.exec_driver_sql(statement)


@pytest.mark.parametrize(
    ("target", "table"),
    [
        ({"job_type": "note"}, "jobs"),
        ({"workflow": "pair"}, "workflow_runs"),
        ({"job_type": "note"}, "schedule_fires"),  # the job stored, its claim refused
        ({"workflow": "pair"}, "schedule_fires"),
    ],
    ids=["job", "run", "job-claim", "run-claim"],
)
def test_a_fire_whose_job_or_run_could_not_be_stored_fires_at_the_next_pass(
    sql_store: Store, target: dict[str, str], table: str
) -> None:
    """The fire was claimed before its job or run was made: a write failing in between
    (the database gone for a moment) lost it, as the next pass starts after it."""
    firing, _ = firing_of(sql_store, target)
    due = T0 + timedelta(seconds=10)
    with refusing_inserts(sql_store, table), contextlib.suppress(DBAPIError):
        firing.run_once(due)  # told in the log, or raised as an outage is (MariaDB's SIGNAL)
    assert sql_store.schedules.last_fire("tick") is None  # not fired yet
    firing.run_once(due + timedelta(seconds=1))
    fired = sql_store.schedules.last_fire("tick")
    assert fired is not None
    assert fired.fire_time == due
    assert (fired.job_id if "job_type" in target else fired.run_id) is not None
    firing.run_once(due + timedelta(seconds=2))  # fired once
    assert sql_store.schedules.last_started_fire("tick") == fired
    made = (
        sql_store.runs.list_runs(1, 10)[1]
        if "workflow" in target
        else len(sql_store.jobs.list_jobs(JobQuery(types=["note"]))[0])
    )
    assert made == 1  # the job stored before the refused claim was found again by its key


def test_a_schedule_that_cannot_be_stored_is_told_once_and_the_others_fire(
    sql_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """An error that is no outage (a value the database refuses, a bug) in one schedule
    ended the pass: the schedules after it did not fire."""
    firing, runs = firing_of(sql_store, {"workflow": "pair"})
    specs = {
        "a-run": parse_schedule("a-run", {"workflow": "pair", "every": "10s"}),
        "b-job": parse_schedule("b-job", {"job_type": "note", "every": "10s"}),
    }
    firing.book = ScheduleBook(sql_store, specs, firing.manager.catalog, runs.workflows)
    # On MariaDB too: the trigger's SIGNAL (1644) is an OperationalError of PyMySQL's, which
    # was taken for the database away (the pass raised, as in an outage).
    with refusing_inserts(sql_store, "workflow_runs"):
        for seconds in (10, 11):
            firing.run_once(T0 + timedelta(seconds=seconds))
    told = [r for r in caplog.records if r.getMessage() == "schedule could not fire"]
    assert len(told) == 1
    assert sql_store.schedules.last_fire("a-run") is None
    assert sql_store.schedules.last_fire("b-job") is not None  # in the same pass
    firing.run_once(T0 + timedelta(seconds=12))
    assert sql_store.schedules.last_fire("a-run") is not None


def test_fires_a_skip_schedule_missed_are_told_once_and_the_next_fires(
    sql_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """``misfire: skip``: the times missed while the server was down were found again at
    every pass (twice a second), with a warning each time, until the next fire."""
    options = {"every": "10m", "misfire": "skip", "overlap": "allow"}
    firing, _ = firing_of(sql_store, {"job_type": "note"}, **options)
    minutes = lambda n: T0 + timedelta(minutes=n)  # noqa: E731
    firing.run_once(minutes(10))
    back = minutes(32)  # 20 and 30 missed; 30 is past the minute's grace
    for moment in (back, back + timedelta(seconds=1), back + timedelta(seconds=2)):
        firing.run_once(moment)
    warned = [r for r in caplog.records if r.getMessage() == "schedule missed fire times"]
    assert [r.__dict__["missed"] for r in warned] == [2]
    started = sql_store.schedules.last_started_fire("tick")
    assert started is not None
    assert started.fire_time == minutes(10)
    firing.run_once(minutes(40))
    started = sql_store.schedules.last_started_fire("tick")
    assert started is not None
    assert started.fire_time == minutes(40)


def test_a_schedule_whose_target_is_gone_claims_no_fire_and_says_so_once(
    sql_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Its workflow removed from the file, a schedule claimed each fire, failed to make
    the run and said so in the log alone: its last fire moved on as if it had fired."""
    firing, _ = firing_of(sql_store, {"workflow": "gone"})
    for seconds in (10, 11, 12):
        firing.run_once(T0 + timedelta(seconds=seconds))
    told = [r for r in caplog.records if r.getMessage() == "schedule cannot fire"]
    assert [str(r.__dict__["error"]) for r in told] == ["unknown workflow 'gone'"]
    assert sql_store.schedules.last_fire("tick") is None
    with pytest.raises(Conflict, match="schedule 'tick' cannot fire: unknown workflow 'gone'"):
        firing.book.set_paused("tick", False, T0)


def test_a_skip_schedule_whose_target_is_gone_claims_no_skipped_time(sql_store: Store) -> None:
    firing, _ = firing_of(sql_store, {"workflow": "gone"}, every="10m", misfire="skip")
    firing.run_once(T0 + timedelta(minutes=12))  # 10 past its grace: skipped
    assert sql_store.schedules.last_fire("tick") is None


def test_the_files_paused_applies_when_it_changes_and_the_apis_until_then(
    sql_store: Store,
) -> None:
    catalog = Catalog(sql_store, TYPES)

    def start_with(paused: bool) -> ScheduleBook:
        """A server (re)started with ``paused`` in the file."""
        spec = parse_schedule("tick", {"job_type": "note", "every": "10s", "paused": paused})
        book = ScheduleBook(sql_store, {"tick": spec}, catalog, {})
        book.read_file(T0)
        return book

    def state(entry: Entry) -> tuple[bool, str]:
        return entry.spec.paused, entry.paused_by

    def restart(paused: bool) -> tuple[bool, str]:
        return state(start_with(paused).get("tick"))

    assert restart(False) == (False, "file")
    assert state(start_with(False).set_paused("tick", False, T0)) == (False, "file")  # resumed
    assert restart(True) == (True, "file")  # the file changed: it applies
    assert state(start_with(True).set_paused("tick", False, T0)) == (False, "api")
    assert restart(True) == (False, "api")  # lasts while the file says the same
    assert restart(False) == (False, "file")
    assert state(start_with(False).set_paused("tick", True, T0)) == (True, "api")
    assert restart(True) == (True, "file")
    assert restart(False) == (False, "file")  # changed back: applies again


def test_a_schedule_deleted_and_made_again_owes_nothing_to_the_old_ones_fires(
    sql_store: Store,
) -> None:
    """The old ``rc``'s job still queued: the new ``rc`` is not skipped for it, and shows
    no last fire of the old one, nor of a fire claimed as the old one was deleted."""
    firing, _ = firing_of(sql_store, {"job_type": "note"})
    book, rc = firing.book, {"name": "rc", "job_type": "note", "every": "10s"}
    book.create(rc, T0)
    firing.run_once(T0 + timedelta(seconds=10))
    old = sql_store.schedules.last_started_fire("rc")
    assert old is not None
    assert old.job_id is not None
    book.delete("rc")
    assert sql_store.schedules.last_fire("rc") is None
    # A leader's pass that read the old schedule before its deletion claims after it.
    sql_store.schedules.claim_fire("rc", T0 + timedelta(seconds=20), T0, old.job_id)
    book.create(rc, T0 + timedelta(seconds=25))
    assert sql_store.schedules.last_fire("rc") is None
    firing.run_once(T0 + timedelta(seconds=30))
    new = sql_store.schedules.last_fire("rc")
    assert new is not None
    assert new.fire_time == T0 + timedelta(seconds=30)
    assert new.job_id not in (None, old.job_id)  # fired, not skipped for the old job


def test_a_paused_schedule_gone_from_the_file_leaves_its_name_free(sql_store: Store) -> None:
    """Its stored paused state is no schedule: not shown, not deleted, and replaced by a
    schedule created under its name."""
    catalog = Catalog(sql_store, TYPES)
    spec = parse_schedule("tick", {"job_type": "note", "every": "10s"})
    ScheduleBook(sql_store, {"tick": spec}, catalog, {}).set_paused("tick", True, T0)
    book = ScheduleBook(sql_store, {}, catalog, {})  # restarted without it in the file
    with pytest.raises(NotFound):
        book.get("tick")
    with pytest.raises(NotFound):
        book.delete("tick")
    made = book.create({"name": "tick", "job_type": "note", "every": "1m"}, T0)
    assert (made.source, made.spec.paused, made.spec.every) == ("api", False, 60)
    with pytest.raises(Conflict):
        book.create({"name": "tick", "job_type": "note", "every": "1m"}, T0)
    book.delete("tick")
    assert "tick" not in book.all()


def test_a_schedule_of_the_file_replaces_a_stored_one_of_its_name(
    sql_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A schedule created through the API, then given to the file under its name, hid
    behind the file's (unsaid, its name refused by the API) and fired again once the
    file dropped it. The server's start now deletes it, and says so; the fires of the name
    stay (the file's schedule fired under it meanwhile)."""
    firing, runs = firing_of(sql_store, {"job_type": "note"})  # "tick" in the file
    catalog, workflows = firing.manager.catalog, runs.workflows
    made = {"name": "tick", "job_type": "note", "every": "1m", "paused": True}
    ScheduleBook(sql_store, {}, catalog, workflows).create(made, T0)
    sql_store.schedules.claim_fire("tick", T0, T0)
    firing.book.read_file(T0)  # started with the file's "tick"
    [told] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert told.__dict__["schedule"] == "tick"
    assert told.__dict__["definition"]["every"] == "1m"
    entry = firing.book.get("tick")
    assert (entry.source, entry.spec.every, entry.spec.paused) == ("config", 10, False)
    assert entry.paused_by == "file"
    kept = sql_store.schedules.last_fire("tick")
    assert kept is not None
    assert kept.fire_time == T0
    firing.book.read_file(T0)
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1
    firing.run_once(T0 + timedelta(seconds=10))
    assert sql_store.schedules.last_fire("tick") is not None
    gone = ScheduleBook(sql_store, {}, catalog, workflows)  # the file dropped it
    gone.read_file(T0)
    with pytest.raises(NotFound):
        gone.get("tick")
    with pytest.raises(NotFound):
        gone.delete("tick")
    firing.book = gone
    firing.run_once(T0 + timedelta(hours=1))
    fired = sql_store.schedules.last_fire("tick")
    assert fired is not None
    assert fired.fire_time == T0 + timedelta(seconds=10)  # no fire since


def test_a_resume_moves_when_fire_times_count_from_and_a_repeat_does_not(
    sql_store: Store,
) -> None:
    name = f"resumed-{uuid.uuid4().hex[:8]}"
    later, latest = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    sql_store.schedules.set_schedule_paused(name, True, T0)
    sql_store.schedules.set_schedule_paused(name, False, later)  # a resume: counts from now
    assert sql_store.schedules.schedule_rows()[name].updated_at == later
    sql_store.schedules.set_schedule_paused(name, False, latest)  # no change: stays
    assert sql_store.schedules.schedule_rows()[name].updated_at == later


def test_schedules_fire_jobs_and_workflow_runs(database_url: str, launch: Launcher) -> None:
    server = launch(database_url, config=CONFIG)
    jobs = wait_for(lambda: (found := fired_jobs(server)) and len(found) >= 3 and found)
    keys = [job["idempotency_key"] for job in jobs]
    assert len(set(keys)) == len(keys)
    assert all(key.startswith("every-second@") for key in keys)
    server.wait_state(jobs[0]["id"], "succeeded")

    def runs() -> list[dict[str, Any]]:
        page = server.client.get("/api/v1/workflow-runs", params={"workflow": "pair"}).json()
        items: list[dict[str, Any]] = page["items"]
        return items

    run = wait_for(lambda: [r for r in runs() if r["state"] == "succeeded"])[0]
    assert run["trigger"] == "schedule:pair-every-2s"
    assert server.client.get("/healthz").json()["scheduler_leader"] is True


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_servers_one_leader_and_no_time_fired_twice(
    database_url: str, launch: Launcher
) -> None:
    first = launch(database_url, config=CONFIG)
    second = launch(database_url, config=CONFIG)

    def leaders() -> list[Server]:
        return [s for s in (first, second) if s.client.get("/healthz").json()["scheduler_leader"]]

    leader = wait_for(lambda: len(found := leaders()) == 1 and found)[0]
    follower = second if leader is first else first
    # Each node says whether it leads: summed over the nodes, 0 is worth an alert.
    assert [leading(server) for server in (leader, follower)] == [1.0, 0.0]
    wait_for(lambda: len(fired_jobs(follower)) >= 4)
    keys = [job["idempotency_key"] for job in fired_jobs(follower)]
    assert len(set(keys)) == len(keys)

    leader.crash()  # the lock goes with its session; the other one takes over
    wait_for(lambda: is_leader(follower), timeout=20)
    before = len(fired_jobs(follower))
    wait_for(lambda: len(fired_jobs(follower)) >= before + 2)
    keys = [job["idempotency_key"] for job in fired_jobs(follower)]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_each_database_of_a_server_has_its_own_leader(backend: str, servers: Servers) -> None:
    """Two deployments on one database server: each leads its own database."""
    with ExitStack() as stack:
        stores = []
        for _ in range(2):
            store = Store(stack.enter_context(servers.private_database(backend)))
            stack.callback(store.close)
            stores.append(store)
        stores.append(Store(stores[0].engine.url.render_as_string(hide_password=False)))
        stack.callback(stores[-1].close)
        leaderships = [Leadership(store) for store in stores]
        for leadership in leaderships:
            stack.callback(leadership.release)
        assert [leadership.held() for leadership in leaderships] == [True, True, False]


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_a_leader_that_goes_silent_loses_the_lead_to_another(
    backend: str, servers: Servers
) -> None:
    # Its connection stays open (a cut link, a proxy between, a frozen process): the
    # server ends its session once idle past the limit, and the lock with it.
    with ExitStack() as stack:
        url = stack.enter_context(servers.private_database(backend))
        stores = [Store(url), Store(url)]
        for store in stores:
            stack.callback(store.close)
        silent, standby = Leadership(stores[0], idle_limit=1), Leadership(stores[1])
        stack.callback(silent.release)
        stack.callback(standby.release)
        assert silent.held()
        assert not standby.held()
        assert wait_for(standby.held, timeout=30, interval=0.2, what="the standby to lead")
        assert not silent.held()


def test_schedules_are_managed_through_the_api(database_url: str, launch: Launcher) -> None:
    server = launch(database_url, config=CONFIG)
    client = server.client
    listed = {s["name"]: s for s in client.get("/api/v1/schedules").json()["items"]}
    assert listed["every-second"]["source"] == "config"
    assert listed["every-second"]["paused_by"] == "file"
    assert listed["every-second"]["next_fire"] is not None
    assert listed["pair-every-2s"]["target"] == {"workflow": "pair"}

    bad = client.post(
        "/api/v1/schedules", json={"name": "x", "job_type": "nope", "cron": "61 * * * *"}
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} >= {"cron"}
    unknown = client.post(
        "/api/v1/schedules", json={"name": "x", "job_type": "nope", "every": "5s"}
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "job_type"
    wrong = {"name": "x", "workflow": "pair", "every": "5s", "args": {"bogus": 1}}
    refused = client.post("/api/v1/schedules", json=wrong)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["args.bogus"]

    body = {"name": "api-tick", "job_type": "note", "every": "1s"}
    created = client.post("/api/v1/schedules", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["source"] == "api"
    assert client.post("/api/v1/schedules", json=body).status_code == 409

    def fired(name: str = "api-tick") -> int:
        query = {"search": name, "per_page": 500}
        return int(client.get("/api/v1/jobs", params=query).json()["total"])

    wait_for(lambda: fired() >= 2)
    paused = client.post("/api/v1/schedules/api-tick/pause").json()
    assert paused["paused"] is True
    assert paused["next_fire"] is None
    settled = fired() + 1  # a fire may have been under way
    # A pass of the scheduler reads every schedule, then fires them in order of
    # name: api-tock, made after the pause, fires after api-tick in the same pass.
    # Its second fire comes a second (api-tick's period) or more after the pause.
    tock = {"name": "api-tock", "job_type": "note", "every": "1s"}
    assert client.post("/api/v1/schedules", json=tock).status_code == 201
    wait_for(lambda: fired("api-tock") >= 2, what="two fires of api-tock")
    assert fired() <= settled
    assert client.delete("/api/v1/schedules/api-tock").status_code == 204
    client.post("/api/v1/schedules/api-tick/resume")
    count = fired()
    wait_for(lambda: fired() >= count + 2)

    assert client.post("/api/v1/schedules/every-second/pause").json()["paused"] is True
    assert client.delete("/api/v1/schedules/every-second").status_code == 409
    assert client.delete("/api/v1/schedules/api-tick").status_code == 204
    assert client.get("/api/v1/schedules/api-tick").status_code == 404
