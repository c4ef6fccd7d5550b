"""The store contract, run on every backend (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psutil
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Select, event, insert, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.exc import DBAPIError, StatementError

from jobyard import outcomes
from jobyard.access.records import AuditEntry, AuditQuery
from jobyard.events.records import (
    JobClaimed,
    JobCreated,
    JobStateChanged,
    JobTerminated,
    LogWritten,
    ProgressReported,
)
from jobyard.models import (
    Dependency,
    EventKind,
    Job,
    JobEnd,
    JobQuery,
    JobSpec,
    JobUpdate,
    WorkerInfo,
    order_values,
)
from jobyard.routing import TagsInvalid
from jobyard.schedules.scheduler import Scheduler
from jobyard.states import LIVE, Control, JobState
from jobyard.store import Store
from jobyard.store.migrate import alembic_config
from jobyard.store.outage import unavailable
from jobyard.store.protocol import Claimed, ClaimOrder
from jobyard.store.rows import event_row, job_columns
from jobyard.store.tables import job_events, jobs, metadata
from tests.databases import lock_waits
from tests.harness import wait_for
from tests.stores import ONE_MIN, SPEC, T0, add, assert_fields, claim, in_threads, new_job, stored

QUEUED, RUNNING, PAUSED = JobState.QUEUED, JobState.RUNNING, JobState.PAUSED


# -- schema ------------------------------------------------------------------
def schema_diffs(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


@pytest.mark.sql_only("the schema and its migrations")
def test_the_migrated_schema_is_the_metadata(store: Store) -> None:
    assert schema_diffs(store) == []


@pytest.mark.sql_only("the schema and its migrations")
def test_migrating_again_changes_nothing(store: Store) -> None:
    job = add(store)[0]
    store.migrate()
    assert store.jobs.get_job(job.id) == job
    with store.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    assert current == (ScriptDirectory.from_config(alembic_config()).get_current_head(),)


def test_concurrent_migrations_wait_for_each_other(empty_database_url: str) -> None:
    stores = [Store(empty_database_url) for _ in range(3)]
    try:
        found = in_threads(3, lambda i: stores[i].migrate())
        assert schema_diffs(stores[0]) == []
        # One created the schema; the others, which waited, found it whole (on MariaDB,
        # whose steps are committed one by one, they read a revision half way before).
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert sorted(found, key=str) == [head, head, None]
    finally:
        for store in stores:
            store.close()


SERVERS = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


def disconnect_other_sessions(url: str) -> int:
    """End every other session on the database, as a server restart would."""
    killer = Store(url)
    try:
        with killer.engine.begin() as conn:
            if killer.dialect == "postgresql":
                pids = (
                    conn.exec_driver_sql(
                        "SELECT pid FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                    .scalars()
                    .all()
                )
                for pid in pids:
                    conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
                # Until the backends are gone (their sockets closed), as after a restart:
                # pg_terminate_backend only sends the signal.
                wait_for(
                    lambda: not any(psutil.pid_exists(pid) for pid in pids),
                    timeout=30,
                    what="the terminated sessions to end",
                )
                return len(pids)
            sessions = conn.exec_driver_sql(
                "SELECT id FROM information_schema.processlist"
                " WHERE db = DATABASE() AND id <> CONNECTION_ID()"
            ).scalars()
            return len([conn.exec_driver_sql(f"KILL CONNECTION {int(s)}") for s in sessions])
    finally:
        killer.close()


@pytest.mark.parametrize("database_url", SERVERS, indirect=True)
def test_connections_lost_to_a_server_restart_are_replaced(database_url: str) -> None:
    store = Store(database_url)
    try:
        [job] = add(store)
        assert disconnect_other_sessions(database_url) > 0
        assert store.jobs.get_job(job.id) == job
    finally:
        store.close()


@pytest.mark.sql_only("transactions of several connections")
def test_readers_do_not_wait_for_a_writer(store: Store) -> None:
    [job] = add(store)
    started = time.perf_counter()
    with store.engine.begin() as writer:
        writer.execute(jobs.update().values(name="uncommitted"))
        assert stored(store, job.id).name is None
        assert store.jobs.list_jobs(JobQuery())[1] == 1
    assert time.perf_counter() - started < 5
    assert stored(store, job.id).name == "uncommitted"


# -- submission --------------------------------------------------------------
def test_a_new_job_reads_back_whole(store: Store) -> None:
    run_at = T0 + timedelta(hours=1)
    submitted = new_job(
        name="Nightly Export", args={"city": "Zürich", "n": [1, 2]}, priority=5,
        state=JobState.SCHEDULED, run_at=run_at, max_attempts=3, restarted_from=7,
    )  # fmt: skip
    [(job, created)] = store.jobs.add_jobs([submitted], T0)
    assert created
    assert store.jobs.get_job(job.id) == job
    assert_fields(job, type="echo", name="Nightly Export", args=submitted.args, spec=SPEC)
    assert_fields(job, priority=5, state=JobState.SCHEDULED, control=None, attempt=0)
    assert_fields(job, created_at=T0, updated_at=T0, run_at=run_at, max_attempts=3)
    assert_fields(job, metrics={}, details={}, restarted_from=7, restarted_as=None)
    assert job.created_at.utcoffset() == timedelta(0)
    [event] = store.jobs.job_events(job.id)
    assert event.record == JobCreated(at=T0, state=JobState.SCHEDULED)
    assert event.record.marshal() == {"state": "scheduled", "event": "created"}


def test_a_batch_keeps_its_order(store: Store) -> None:
    jobs = add(store, *(new_job(name=f"job {i}") for i in range(60)))
    assert [job.name for job in jobs] == [f"job {i}" for i in range(60)]
    assert len({job.id for job in jobs}) == 60


def test_a_batch_reads_back_every_value_as_given(store: Store) -> None:
    """Values that JSON or a database could bend: text, numbers, nesting, times to the
    microsecond and to the second, in a batch longer than one page of a multi-row insert."""
    odd = "quote \" backslash \\ tab \t newline \n émoji 🚀 ünïcode ∑ <tag> 'x'"
    args = {"s": odd, "n": [0, -1, 2**62, 0.1, 1e300], "t": True, "f": False, "z": None}
    args |= {"nested": {"a": [{"b": []}], "when": "2026-01-02T03:04:05"}, odd: {}}
    at_second, at_micro = T0 + timedelta(days=1), T0 + timedelta(microseconds=123_457)
    batch = [
        new_job(
            name=None if i % 3 == 0 else f"{odd} {i}",
            args={**args, "i": i},
            priority=-i,
            max_attempts=1 + i % 4,
            run_at=[None, at_second, at_micro][i % 3],
            idempotency_key=f"k-{odd}-{i}" if i % 2 else None,
        )
        for i in range(1200)
    ]
    added = add(store, *batch, now=T0 + timedelta(microseconds=1))
    assert [job.args["i"] for job in added] == list(range(1200))
    for job, given in zip(added, batch, strict=True):
        assert_fields(job, name=given.name, args=given.args, priority=given.priority)
        assert_fields(job, run_at=given.run_at, idempotency_key=given.idempotency_key)
        assert_fields(
            job, max_attempts=given.max_attempts, created_at=T0 + timedelta(microseconds=1)
        )
    for job in added[:50] + added[-50:]:
        assert stored(store, job.id) == job


@pytest.mark.sql_only("the stored form of each column")
def test_a_batch_stores_each_value_as_an_insert_of_its_columns_does(store: Store) -> None:
    """The batch's own way of sending rows (one executemany on SQLite) stores each value as
    SQLAlchemy's binding of the columns does: the same text for times and JSON."""
    odd = "quote \" backslash \\ émoji 🚀 ∑ 'x'"
    given = new_job(
        name=odd,
        args={"s": odd, "n": [0, 0.1, 1e300, 2**62], "t": True, "z": None},
        spec=dataclasses.replace(SPEC, env={"É": odd}, tags=("gpu",)),
        run_at=(T0 + timedelta(microseconds=7)).astimezone(timezone(timedelta(hours=-5))),
        idempotency_key="k",
        state=JobState.SCHEDULED,
    )
    [job] = add(store, given, now=T0 + timedelta(microseconds=1))
    [event] = store.jobs.job_events(job.id)
    values = {c.name: getattr(job, c.name) for c in jobs.c if c.name != "id"}
    with store.engine.begin() as conn:
        row = job_columns(values | {"idempotency_key": "k2"})
        again = conn.execute(insert(jobs).values(row).returning(jobs.c.id)).scalar_one()
        conn.execute(insert(job_events).values(event_row(again, event.record)))
        stored_jobs = conn.exec_driver_sql(f"SELECT * FROM jobs WHERE id IN ({job.id}, {again})")
        first, second = (dict(r._mapping) for r in stored_jobs)
        query = f"SELECT * FROM job_events WHERE job_id IN ({job.id}, {again}) ORDER BY id"
        created, inserted = (dict(r._mapping) for r in conn.exec_driver_sql(query))
    assert {**first, "id": 0, "idempotency_key": ""} == {**second, "id": 0, "idempotency_key": ""}
    assert {**created, "id": 0, "job_id": 0} == {**inserted, "id": 0, "job_id": 0}


@pytest.mark.sql_only("the audit log")
def test_a_submission_stores_its_audit_entries_with_its_jobs(store: Store) -> None:
    seen: list[list[tuple[int, bool]]] = []

    def audit(added: Sequence[tuple[Job, bool]]) -> list[AuditEntry]:
        seen.append([(job.id, created) for job, created in added])
        return [AuditEntry(T0, "ann", "token", "submit", f"/jobs/{job.id}") for job, _ in added]

    keyed = new_job(idempotency_key="k")
    added = store.jobs.add_jobs([keyed, keyed, new_job()], T0, audit=audit)
    first, _, other = (job.id for job, _ in added)
    assert seen == [[(first, True), (first, False), (other, True)]]
    entries, total = store.access.find_audit(AuditQuery(actions=["submit"]))
    assert total == 3
    assert sorted(e.target for e in entries) == sorted(f"/jobs/{i}" for i in (first, first, other))
    assert {(e.actor, e.via, e.at) for e in entries} == {("ann", "token", T0)}


@pytest.mark.sql_only("transactions")
def test_a_submission_whose_audit_fails_stores_nothing(store: Store) -> None:
    def audit(added: Sequence[tuple[Job, bool]]) -> list[AuditEntry]:
        raise RuntimeError("no audit")

    with pytest.raises(RuntimeError, match="no audit"):
        store.jobs.add_jobs([new_job(name="lost")], T0, audit=audit)
    assert store.jobs.list_jobs(JobQuery(search="lost"))[1] == 0
    assert store.access.find_audit(AuditQuery())[1] == 0


@pytest.mark.sql_only("transactions")
def test_a_read_of_one_statement_leaves_its_connection_to_transactions(store: Store) -> None:
    """A lone read goes without BEGIN (PostgreSQL: in autocommit); the connection it
    used, back in the pool, still writes in transactions that roll back whole."""
    if store.dialect == "postgresql":
        with store.jobs._peek() as conn:  # its own transaction: it began with the statement
            assert conn.exec_driver_sql("SELECT now() = statement_timestamp()").scalar()
        with store.jobs._read() as conn:
            assert not conn.exec_driver_sql("SELECT now() = statement_timestamp()").scalar()
    assert store.jobs.get_job(10**9) is None  # a lone read, and one that fails:
    with pytest.raises(StatementError), store.jobs._peek() as conn:
        conn.exec_driver_sql("SELECT no_such_column FROM jobs")

    def audit(added: Sequence[tuple[Job, bool]]) -> list[AuditEntry]:
        raise RuntimeError("no audit")

    for _ in range(3):  # whichever pooled connection the write gets
        with pytest.raises(RuntimeError, match="no audit"):
            store.jobs.add_jobs([new_job(name="lost")], T0, audit=audit)
    assert store.jobs.list_jobs(JobQuery(search="lost"))[1] == 0


def test_times_in_other_zones_are_stored_as_utc_and_naive_ones_refused(store: Store) -> None:
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    [job] = add(store, new_job(run_at=plus_two), now=plus_two)
    assert_fields(job, created_at=T0, run_at=T0)
    assert job.created_at.tzinfo == UTC
    with pytest.raises((StatementError, ValueError), match="naive datetime"):
        add(store, now=T0.replace(tzinfo=None))


def test_get_job_of_an_unknown_id_is_none(store: Store) -> None:
    assert store.jobs.get_job(123456) is None


@pytest.mark.parametrize("beyond", [0, -1, 2**63, 10**23])
def test_an_id_no_row_can_have_is_none_not_an_error(store: Store, beyond: int) -> None:
    """Out of 64 bits an id fails on PostgreSQL (out of range) and in SQLite's driver
    (an overflow): it is only absent."""
    assert store.jobs.get_job(beyond) is None
    assert store.runs.get_run(beyond) is None


def test_an_idempotency_key_returns_the_existing_job(store: Store) -> None:
    [first] = add(store, new_job(idempotency_key="k1"))
    keys = ["k1", None, "k2", "k2"]
    again = store.jobs.add_jobs([new_job(idempotency_key=key, name="again") for key in keys], T0)
    assert again[0] == (first, False)
    assert [created for _, created in again] == [False, True, True, False]
    assert again[3][0] == again[2][0]
    assert store.jobs.list_jobs(JobQuery())[1] == 3
    assert len(store.jobs.job_events(first.id)) == 1


def test_racing_submissions_of_one_key_create_one_job(database_url: str) -> None:
    stores = [Store(database_url) for _ in range(4)]
    try:
        results = in_threads(
            4, lambda i: stores[i].jobs.add_jobs([new_job(idempotency_key="race")], T0)
        )
    finally:
        for store in stores:
            store.close()
    assert sum(created for [(_, created)] in results) == 1
    assert len({job.id for [(job, _)] in results}) == 1


# -- listing -----------------------------------------------------------------
@pytest.fixture
def listed(store: Store) -> list[Job]:
    specs = [
        ("export", "Monthly report", {"path": "/tmp/a_b"}, "default", 1, QUEUED),
        ("export", None, {"path": "/tmp/100%"}, "bulk", 5, JobState.FAILED),
        ("resize", "Resize photos", {"size": "LARGE"}, "default", 5, QUEUED),
        ("resize", "thumbnails", {"size": "small", "city": "Zürich"}, "bulk", 0, JobState.HELD),
    ]
    return [
        add(store, new_job(type=t, name=n, args=a, queue=q, priority=p, state=s),
            now=T0 + timedelta(seconds=i))[0]
        for i, (t, n, a, q, p, s) in enumerate(specs)
    ]  # fmt: skip


def ids(store: Store, **query: Any) -> list[int]:
    return [job.id for job in store.jobs.list_jobs(JobQuery(**query))[0]]


def test_listing_is_newest_first_by_default(store: Store, listed: list[Job]) -> None:
    assert ids(store) == [job.id for job in reversed(listed)]


def test_listing_filters(store: Store, listed: list[Job]) -> None:
    a, _b, c, d = (job.id for job in listed)
    assert sorted(ids(store, states=[QUEUED])) == [a, c]
    assert sorted(ids(store, types=["resize"], queues=["bulk"])) == [d]
    both = ["default", "bulk"]
    assert sorted(ids(store, states=[QUEUED, JobState.HELD], queues=both)) == [a, c, d]
    assert ids(store, types=["nope"]) == []
    [taken] = claim(store, limit=1, queues=["default"], worker="w9")
    assert ids(store, workers=["w9"]) == [taken.id]
    assert ids(store, workers=["w9"], states=[QUEUED]) == []


def test_listing_cuts_by_creation_time(store: Store, listed: list[Job]) -> None:
    a, b, c, d = (job.id for job in listed)  # created at T0, T0 + 1 s, + 2 s, + 3 s
    second = timedelta(seconds=1)
    assert ids(store, since=T0 + second) == [d, c, b]  # at or after
    assert ids(store, until=T0 + second) == [a]  # before
    assert ids(store, since=T0 + second, until=T0 + 3 * second) == [c, b]
    elsewhere = timezone(timedelta(hours=-5))  # the same moment in another zone
    assert ids(store, since=(T0 + 2 * second).astimezone(elsewhere)) == [d, c]
    assert ids(store, since=T0 + 4 * second) == []


@pytest.fixture
def varied(store: Store) -> list[Job]:
    """Jobs with ties in every sortable column and run_at NULL in some."""
    made = []
    for i in range(11):
        run_at = None if i % 3 == 0 else T0 + timedelta(minutes=i % 2)
        job = new_job(type=f"t{i % 2}", queue="QB"[i % 2], priority=i % 3, run_at=run_at)
        made += add(store, job, now=T0 + timedelta(seconds=i // 3))
    return made


SORTS = [
    ["-created_at"],
    ["created_at"],
    ["id"],
    ["-id"],
    ["run_at"],
    ["-run_at"],
    ["priority", "-run_at"],
    ["-priority", "run_at", "-id"],
    ["type", "-queue", "-created_at"],
    ["state", "-started_at"],
]


@pytest.mark.parametrize("sort", SORTS, ids=",".join)
def test_listing_after_a_job_goes_on_where_it_left_off(
    store: Store, varied: list[Job], sort: list[str]
) -> None:
    whole = ids(store, sort=sort, per_page=100)
    paged: list[int] = []
    after = None
    while True:
        page, total = store.jobs.list_jobs(JobQuery(sort=sort, per_page=3, after=after))
        assert total == len(varied)  # of them all, the ones before it too
        if not page:
            break
        paged += [job.id for job in page]
        after = order_values(page[-1], sort)
    assert paged == whole


@pytest.mark.parametrize("sort", [["-created_at"], ["run_at"], ["-priority", "run_at"]], ids=str)
def test_listing_after_a_removed_job_skips_none_and_shows_new_ones_once(
    store: Store, varied: list[Job], sort: list[str]
) -> None:
    seen: list[int] = []
    after = None
    while page := store.jobs.list_jobs(JobQuery(sort=sort, per_page=2, after=after))[0]:
        seen += [job.id for job in page]
        after = order_values(page[-1], sort)
        for job in page:  # what a cleanup does: remove what it was shown
            assert store.jobs.delete_job(job.id, frozenset(JobState))
        if len(seen) < len(varied):  # a new job behind or ahead of the cursor
            add(store, new_job(), now=T0 + timedelta(hours=1))
    assert set(seen) >= {job.id for job in varied}
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("EXPORT", [0, 1]),  # type, any case
        ("photos", [2]),  # name
        ("large", [2]),  # args, any case
        ("a_b", [0]),  # _ is no wildcard
        ("100%", [1]),  # % is no wildcard
        ("_", [0]),
        ("zürich", [3]),  # non-ASCII args
        ("nothing like it", []),
    ],
)
def test_listing_searches_type_name_and_args(
    store: Store, listed: list[Job], search: str, expected: list[int]
) -> None:
    assert sorted(ids(store, search=search)) == [listed[i].id for i in expected]


def test_a_search_ignores_case_and_nothing_else_on_every_backend(store: Store) -> None:
    # SQLite's lower() folds ASCII letters only; MariaDB compared the arguments' text in
    # the connection's collation, where e is é and any two emoji are one.
    specs = [
        ("s1", None, {"text": "ÉCOLE Überweg"}),
        ("s2", None, {"text": "plain resume"}),
        ("s3", None, {"text": "😀 party"}),
        ("s4", "🎉 name", {}),
    ]
    made = [add(store, new_job(type=t, name=n, args=a))[0].id for t, n, a in specs]
    found = {
        text: sorted(job_id for job_id in ids(store, search=text) if job_id in made)
        for text in ("école", "überweg", "ecole", "résumé", "RESUME", "🎉", "😀", "é")
    }
    assert found == {
        "école": [made[0]],  # any case, beyond ASCII too
        "überweg": [made[0]],
        "ecole": [],  # accents are not ignored
        "résumé": [],
        "RESUME": [made[1]],
        "🎉": [made[3]],  # one emoji is not another
        "😀": [made[2]],
        "é": [made[0]],  # not every e
    }


def test_a_search_finds_arguments_as_written_not_as_json_writes_them(store: Store) -> None:
    """The arguments are stored as JSON, where a quote is \\" and a backslash \\\\: a
    value with either could not be found by its own text."""
    made = add(store, new_job(type="s5", args={"s": 'say "hi" C:\\dir\ttab'}))[0].id

    def found(text: str) -> bool:
        return made in ids(store, search=text)

    assert found('say "hi"')
    assert found("C:\\dir")
    assert found("dir\ttab")
    assert found('"HI" c:')  # any case still
    assert not found('say "ho"')
    # JSON's escapes are not text of the value: a backslash stands for itself
    assert not found('say \\"hi\\"')
    assert not found("C:\\\\dir")
    assert not found("dir\\ttab")


def test_a_search_finds_the_text_it_was_copied_from_and_its_other_case_everywhere(
    store: Store,
) -> None:
    # Python's lower() writes a final sigma and a dotted I as two characters; PostgreSQL's
    # and MariaDB's lower() fold each character on its own (MariaDB only in a collation of
    # a recent Unicode: its default left letters of Unicode 5.2 and later as they were).
    typed = {"ΟΔΟΣ": "οδος", "İzmir": "izmir", "ẞ": "ß", "Ꭰ": "ꭰ", "Ა": "ა", "𐐀": "𐐨", "Ⱥ": "ⱥ"}  # noqa: RUF001
    made = {word: add(store, new_job(name=f"{word}-x"))[0].id for word in typed}
    for word, job_id in made.items():
        for term in (f"{word}-x", typed[word], word.upper()):
            assert job_id in ids(store, search=term), (word, term)
    assert made["ΟΔΟΣ"] in ids(store, search="οδοσ")  # the final sigma is sigma


def test_listing_sorts_with_id_breaking_ties(store: Store, listed: list[Job]) -> None:
    a, b, c, d = (job.id for job in listed)
    assert ids(store, sort=["-priority"]) == [c, b, a, d]
    assert ids(store, sort=["priority"]) == [d, a, b, c]
    assert ids(store, sort=["queue", "-priority"]) == [b, d, c, a]
    assert ids(store, sort=["type", "-id"]) == [b, a, d, c]
    # A column named again sorts nothing more, in whichever direction: the first one
    # counts (SQLite refused a query naming it 2,001 times, more ORDER BY terms than it takes).
    assert ids(store, sort=["queue", "-queue", "-priority", "priority"]) == [b, d, c, a]
    assert ids(store, sort=["-priority"] * 2001) == [c, b, a, d]
    assert ids(store, sort=["id", "-priority"]) == [a, b, c, d]


def test_listing_sorts_nulls_last_ascending_first_descending(
    store: Store, listed: list[Job]
) -> None:
    a, b, c, d = (job.id for job in listed)
    later = T0 + timedelta(hours=1)
    for job_id, at in ((b, later), (c, T0)):
        store.jobs.update_job(JobUpdate(job_id, frozenset(JobState), {"started_at": at}), T0)
    assert ids(store, sort=["started_at"]) == [c, b, a, d]
    assert ids(store, sort=["-started_at"]) == [d, a, b, c]


def test_listing_pages_and_counts(store: Store, listed: list[Job]) -> None:
    everything = ids(store, sort=["id"])
    pages = [store.jobs.list_jobs(JobQuery(page=p, per_page=3, sort=["id"])) for p in (1, 2, 3)]
    assert [[job.id for job in items] for items, _ in pages] == [everything[:3], everything[3:], []]
    assert {total for _, total in pages} == {4}
    assert store.jobs.list_jobs(JobQuery(states=[QUEUED], per_page=1))[1] == 2


@pytest.mark.parametrize(
    "query", [JobQuery(sort=["args"]), JobQuery(sort=["-pid"]), JobQuery(page=0)]
)
def test_listing_refuses_bad_queries(store: Store, query: JobQuery) -> None:
    with pytest.raises(ValueError, match="bad listing"):
        store.jobs.list_jobs(query)


# -- compare-and-set updates and deletion ----------------------------------
def test_an_update_applies_while_the_state_is_expected(store: Store) -> None:
    [job] = add(store)
    later = T0 + ONE_MIN
    event = JobStateChanged(at=later, state=JobState.HELD)
    values = {"state": JobState.HELD, "control": Control.PAUSE, "spec": JobSpec(python="m:f"),
              "details": {"why": "user"}, "run_at": later, "error": "x" * 70_000}  # fmt: skip
    updated = store.jobs.update_job(JobUpdate(job.id, frozenset({QUEUED}), values, event), later)
    assert updated == stored(store, job.id)
    assert_fields(updated, state=JobState.HELD, control=Control.PAUSE, spec=values["spec"])
    assert_fields(updated, details={"why": "user"}, run_at=later, error="x" * 70_000)
    assert_fields(updated, created_at=T0, updated_at=later)
    assert store.jobs.job_events(job.id)[-1].record == event


def test_an_update_in_another_state_changes_nothing(store: Store) -> None:
    [job] = add(store)
    event = JobStateChanged(at=T0, state=RUNNING)
    update = JobUpdate(job.id, frozenset({RUNNING, PAUSED}), {"state": JobState.KILLED}, event)
    assert store.jobs.update_job(update, T0 + ONE_MIN) is None
    assert store.jobs.get_job(job.id) == job
    assert len(store.jobs.job_events(job.id)) == 1
    assert store.jobs.update_job(dataclasses.replace(update, job_id=987654), T0) is None


def test_an_update_of_an_unknown_field_is_refused(store: Store) -> None:
    [job] = add(store)
    with pytest.raises(ValueError, match="colour"):
        store.jobs.update_job(JobUpdate(job.id, frozenset({QUEUED}), {"colour": "red"}), T0)


def test_delete_removes_the_job_and_its_events_only_in_expected_states(store: Store) -> None:
    keep, gone = add(store, new_job(), new_job())
    store.jobs.append_output(
        gone.id, [LogWritten(at=T0, seq=1, stream="stdout", line="bye")], [], {}
    )
    assert not store.jobs.delete_job(gone.id, frozenset({JobState.SUCCEEDED}))
    assert store.jobs.delete_job(gone.id, frozenset({QUEUED}))
    assert store.jobs.get_job(gone.id) is None
    assert store.jobs.job_events(gone.id) == []
    assert store.jobs.log_lines(gone.id) == []
    assert not store.jobs.delete_job(gone.id, frozenset({QUEUED}))
    assert store.jobs.get_job(keep.id) == keep
    assert len(store.jobs.job_events(keep.id)) == 1


def _end(job: Job, *lines: str, worker: str = "w1", attempt: int = 1) -> JobEnd:
    logs = [LogWritten(at=T0, seq=i, stream="stdout", line=line) for i, line in enumerate(lines, 1)]
    values = {"state": JobState.SUCCEEDED, "finished_at": T0 + ONE_MIN, "exit_code": 0}
    event = JobTerminated(at=T0 + ONE_MIN, state=JobState.SUCCEEDED)
    update = JobUpdate(job.id, frozenset({JobState.RUNNING}), values, event)
    progress = [ProgressReported(at=T0, fraction=1.0, message=None)]
    return JobEnd(update, worker, attempt, logs, progress, {"log_lines": len(lines)})


def test_an_end_says_whether_jobs_wait_for_it(store: Store) -> None:
    upstream, other, met, foreign = add(store, *(new_job() for _ in range(4)))
    [waiting] = add(store, new_job(state=JobState.WAITING, depends_on=(Dependency(upstream.id),)))
    # an edge met already, and one from a job whose end comes from another worker
    add(store, new_job(state=JobState.WAITING, depends_on=(Dependency(met.id, met=True),)))
    add(store, new_job(state=JobState.WAITING, depends_on=(Dependency(foreign.id),)))
    claim(store, limit=4)
    ends = [_end(upstream), _end(other), _end(met), _end(foreign, worker="w2")]
    ended = store.jobs.end_jobs(ends, T0 + ONE_MIN)
    assert [(e.job.id, e.awaited) if e else None for e in ended] == [
        (upstream.id, True),
        (other.id, False),
        (met.id, False),
        None,
    ]
    assert stored(store, waiting.id).state is JobState.WAITING  # settling is the engine's


def test_ends_are_written_together_each_only_by_the_attempt_that_runs_it(store: Store) -> None:
    mine, other, gone, done = add(store, *(new_job() for _ in range(4)))
    claim(store, limit=4)
    assert store.jobs.delete_job(gone.id, frozenset({JobState.RUNNING}))
    assert store.jobs.end_jobs([_end(done, "first")], T0 + ONE_MIN)[0] is not None
    ends = [
        _end(mine, "a", "b"),
        _end(other, "x", worker="w2"),  # not its worker: nothing of it is written
        _end(gone, "y"),  # removed meanwhile
        _end(done, "again"),  # ended before (a retry whose first commit went unseen)
    ]
    ended = store.jobs.end_jobs(ends, T0 + ONE_MIN)
    assert [e.job.id if e else None for e in ended] == [mine.id, None, None, None]
    assert ended[0] is not None
    assert not ended[0].awaited  # no job waits for it
    assert_fields(ended[0].job, state=JobState.SUCCEEDED, log_lines=2, exit_code=0)
    assert ended[0].job == stored(store, mine.id)
    assert [line.line for line in store.jobs.log_lines(mine.id)] == ["a", "b"]
    kinds = [event.kind for event in store.jobs.job_events(mine.id)]
    assert kinds[-4:] == [EventKind.LOG, EventKind.LOG, EventKind.PROGRESS, EventKind.STATE]
    assert store.jobs.log_lines(other.id) == []
    assert stored(store, other.id).state is JobState.RUNNING
    assert [line.line for line in store.jobs.log_lines(done.id)] == ["first"]
    assert store.jobs.end_jobs([], T0) == []


def test_a_hand_back_holds_a_job_its_user_paused_as_the_locked_row_says(store: Store) -> None:
    """The worker's copy may be older than the row: a pause asked since is held, a paused
    job whose resume was asked is queued, a plain one queued."""
    asked, paused, plain = add(store, *(new_job() for _ in range(3)))
    claimed = {job.id: job for job in claim(store, limit=3)}
    pause = JobUpdate(asked.id, frozenset({JobState.RUNNING}), {"control": Control.PAUSE})
    assert store.jobs.update_job(pause, T0) is not None
    stopped = {"state": JobState.PAUSED, "paused_at": T0}  # as its worker pauses it
    assert store.jobs.update_job(JobUpdate(paused.id, frozenset(LIVE), stopped), T0)
    claimed[paused.id] = claimed[paused.id].evolve(**stopped)  # and knows it
    resume = JobUpdate(paused.id, frozenset(LIVE), {"control": Control.RESUME})
    assert store.jobs.update_job(resume, T0) is not None  # not carried out yet
    now = T0 + ONE_MIN
    ends = [outcomes.requeued_end(claimed[j.id], now, "drained") for j in (asked, paused, plain)]
    ended = [e.job if e else None for e in store.jobs.end_jobs(ends, now)]
    assert [(j.state, j.control) if j else None for j in ended] == [
        (JobState.HELD, None),
        (JobState.QUEUED, None),
        (JobState.QUEUED, None),
    ]
    assert stored(store, paused.id).paused_seconds == 60.0


def test_an_end_that_would_run_the_job_again_ends_it_killed_when_a_kill_is_pending(
    store: Store,
) -> None:
    """A kill asked before the worker saw it: its hand-back (a drain) or the retry of an
    attempt that failed meanwhile would run the job again, and the kill was lost."""
    retried, handed, alone = add(store, *(new_job(max_attempts=3) for _ in range(3)))
    claimed = {job.id: job for job in claim(store, limit=3)}
    for job_id in (retried.id, handed.id):
        kill = JobUpdate(job_id, frozenset({JobState.RUNNING}), {"control": Control.KILL})
        assert store.jobs.update_job(kill, T0) is not None
    now = T0 + ONE_MIN
    failed = outcomes.RunEnd(succeeded=False, exit_code=1, error="exit code 1")

    def retry(job: Job) -> JobEnd:
        update = outcomes.finished(job, failed, now)
        instead = outcomes.killed_instead(job, update, now)
        return JobEnd(update, "w1", 1, if_killed=instead)

    ends = [
        retry(claimed[retried.id]),
        outcomes.requeued_end(claimed[handed.id], now, "worker w1 stopped"),
        retry(claimed[alone.id]),  # no kill asked: retried as before
    ]
    ended = [e.job if e else None for e in store.jobs.end_jobs(ends, now)]
    for job in ended[:2]:
        assert job is not None
        assert_fields(job, state=JobState.KILLED, reason="killed", error=outcomes.KILLED_BY_USER)
        assert stored(store, job.id).state is JobState.KILLED
        last = store.jobs.job_events(job.id)[-1].record
        assert isinstance(last, JobTerminated)
        assert last.state is JobState.KILLED
    assert ended[2] is not None
    assert ended[2].state is JobState.SCHEDULED


def test_ends_and_the_claim_of_the_slots_they_free_commit_together(store: Store) -> None:
    first, foreign = add(store, new_job(), new_job())
    claim(store, limit=2)
    later, next_ = add(store, new_job(), new_job(priority=5))
    order = ClaimOrder("w1", "host-a", None, 2, T0 + 2 * ONE_MIN)
    ended, claimed = store.queue.end_and_claim(
        [_end(first, "out"), _end(foreign, worker="w2")], T0 + ONE_MIN, order
    )
    assert [e.job.id if e else None for e in ended] == [first.id, None]
    assert ended[0] is not None
    assert ended[0].job == stored(store, first.id)
    assert [line.line for line in store.jobs.log_lines(first.id)] == ["out"]
    assert claimed is not None
    assert [job.id for job in claimed.jobs] == [next_.id, later.id]
    assert claimed.more is False
    assert claimed.jobs == [stored(store, next_.id), stored(store, later.id)]
    assert_fields(claimed.jobs[0], state=RUNNING, worker="w1", started_at=T0 + ONE_MIN)
    assert stored(store, foreign.id).state is RUNNING


def test_ends_whose_claim_fails_are_not_stored_either(store: Store) -> None:
    [job] = add(store)
    claim(store)
    add(store)
    order = ClaimOrder("w1", "host-a", None, 1, T0 + 2 * ONE_MIN, tags=["not a tag"])
    with pytest.raises(TagsInvalid):
        store.queue.end_and_claim([_end(job, "out")], T0 + ONE_MIN, order)
    assert stored(store, job.id).state is RUNNING
    assert store.jobs.log_lines(job.id) == []


def test_a_batch_of_ends_one_of_which_is_refused_writes_none_of_them(store: Store) -> None:
    good, bad = add(store, new_job(), new_job())
    claim(store, limit=2)
    waiting = add(store)
    refused = dataclasses.replace(_end(bad, "b"), values={"colour": "red"})
    with pytest.raises(ValueError, match="colour"):
        store.jobs.end_jobs([_end(good, "g"), refused], T0 + ONE_MIN)
    order = ClaimOrder("w1", "host-a", None, 1, T0 + 2 * ONE_MIN)
    with pytest.raises(ValueError, match="colour"):
        store.queue.end_and_claim([_end(good, "g"), refused], T0 + ONE_MIN, order)
    for job in (good, bad):
        assert stored(store, job.id).state is RUNNING
        assert store.jobs.log_lines(job.id) == []
    assert stored(store, waiting[0].id).state is QUEUED


# -- claims --------------------------------------------------------------------
def test_claims_go_by_priority_then_age(store: Store) -> None:
    low, high, low2, high2 = add(store, *(new_job(priority=p) for p in (0, 9, 0, 9)))
    assert [job.id for job in claim(store, limit=3)] == [high.id, high2.id, low.id]
    assert [job.id for job in claim(store)] == [low2.id]
    assert claim(store) == []


def test_a_claim_starts_a_new_attempt_on_the_worker(store: Store) -> None:
    [job] = add(store)
    dirty = {"control": Control.KILL, "pid": 42, "paused_seconds": 3.5, "finished_at": T0}
    store.jobs.update_job(JobUpdate(job.id, frozenset({QUEUED}), dirty), T0)
    now = T0 + ONE_MIN
    [claimed] = claim(store, worker="w7", now=now)
    assert claimed == store.jobs.get_job(job.id)
    assert_fields(claimed, state=RUNNING, worker="w7", host="host-a", attempt=1, updated_at=now)
    assert_fields(claimed, started_at=now, lease_expires_at=now + ONE_MIN, finished_at=None)
    assert_fields(claimed, control=None, pid=None, paused_seconds=0.0, paused_at=None)
    event = store.jobs.job_events(job.id)[-1]
    assert event.record == JobClaimed(at=now, attempt=1, worker="w7")
    assert event.record.marshal() == {"state": "running", "attempt": 1, "worker": "w7"}


def test_a_job_queued_after_the_claims_clock_was_read_starts_when_it_was_queued(
    store: Store,
) -> None:
    """The claim's ``now`` is read before its transaction sees the job: a job queued in
    between (its upstream's end settled meanwhile) must not start before it was queued."""
    queued = T0 + timedelta(milliseconds=3)
    [job] = add(store, now=queued)
    [claimed] = claim(store, now=T0)
    assert_fields(claimed, started_at=queued, updated_at=queued, wait_seconds=0.0)
    assert store.jobs.job_events(job.id)[-1].record == JobClaimed(at=queued, attempt=1, worker="w1")


def test_a_job_changed_by_a_clock_far_ahead_starts_on_the_claims_own_clock(store: Store) -> None:
    ahead = T0 + timedelta(seconds=5)  # a host whose clock runs 5 s ahead queued it
    add(store, now=ahead)
    [claimed] = claim(store, now=T0)
    assert_fields(claimed, started_at=T0, updated_at=T0, wait_seconds=0.0)


def test_claims_skip_future_jobs_other_queues_and_other_states(store: Store) -> None:
    due, _future, _bulk, _held = add(
        store, new_job(run_at=T0), new_job(run_at=T0 + ONE_MIN), new_job(queue="bulk"),
        new_job(state=JobState.HELD),
    )  # fmt: skip
    assert claim(store, queues=["default"]) == [store.jobs.get_job(due.id)]
    assert claim(store, queues=["default"]) == []
    assert claim(store, queues=[]) == []
    assert [job.queue for job in claim(store, queues=["bulk", "other"])] == ["bulk"]
    assert [job.run_at for job in claim(store, now=T0 + ONE_MIN)] == [T0 + ONE_MIN]


def test_a_claim_that_takes_its_limit_says_whether_due_jobs_are_left(store: Store) -> None:
    def take(limit: int, queues: list[str] | None = None) -> tuple[int, bool]:
        claimed = store.queue.claim_jobs("w1", "host-a", queues, limit, T0, T0 + ONE_MIN)
        return len(claimed.jobs), claimed.more

    add(store, *(new_job() for _ in range(4)), new_job(run_at=T0 + ONE_MIN), new_job(queue="bulk"))
    assert take(2) == (2, True)  # two more of its queue and one of bulk are left
    assert take(1, ["default"]) == (1, True)  # one left
    # Its limit, and nothing left that it could take: a future job and another queue's
    # do not count.
    assert take(1, ["default"]) == (1, False)
    assert take(2) == (1, False)  # short: it took all there was
    assert take(1) == (0, False)


def test_concurrent_claimers_never_share_a_job(database_url: str) -> None:
    stores = [Store(database_url) for _ in range(4)]
    try:
        jobs = add(stores[0], *(new_job(priority=i % 3) for i in range(200)))

        def drain(index: int) -> list[int]:
            mine: list[int] = []
            while batch := claim(stores[index], limit=7, worker=f"w{index}"):
                mine += [job.id for job in batch]
            return mine

        claimed = [job_id for batch in in_threads(4, drain) for job_id in batch]
        events = [e for job in jobs for e in stores[0].jobs.job_events(job.id)]
    finally:
        for store in stores:
            store.close()
    assert Counter(claimed) == Counter(job.id for job in jobs)
    assert Counter(e.record.marshal()["state"] for e in events) == {"queued": 200, "running": 200}


# -- leases, controls, promotion -----------------------------------------------
def test_leases_are_renewed_and_expire(store: Store) -> None:
    info = WorkerInfo("w1", "host-a", 10, "1.0", ["default"], 2, T0, T0)
    store.workers.register_worker(info)
    mine, theirs, _queued = add(store, new_job(), new_job(), new_job())
    [m] = claim(store, limit=1)
    [t] = claim(store, limit=1, worker="w2")
    store.jobs.update_job(JobUpdate(t.id, frozenset({RUNNING}), {"state": PAUSED}), T0)
    later = T0 + timedelta(minutes=5)
    assert store.queue.renew_leases("w1", later, later + ONE_MIN) == [mine.id]
    assert store.queue.renew_leases("w3", later, later + ONE_MIN) == []
    # Given the jobs its process runs, a worker renews only those (a namesake's stay).
    assert store.queue.renew_leases("w1", later, later + ONE_MIN, [mine.id + 999]) == []
    assert store.queue.renew_leases("w1", later, later + ONE_MIN, [mine.id]) == [mine.id]
    assert stored(store, m.id).lease_expires_at == later + ONE_MIN
    assert stored(store, t.id).lease_expires_at == T0 + ONE_MIN
    assert store.workers.get_worker("w1") == dataclasses.replace(info, heartbeat_at=later)
    assert [job.id for job in store.queue.expired_leases(later)] == [theirs.id]
    assert store.queue.expired_leases(T0) == []
    assert [job.id for job in store.queue.live_jobs_on_host("host-a")] == [mine.id, theirs.id]
    assert store.queue.live_jobs_on_host("host-b") == []


@pytest.mark.parametrize("database_url", SERVERS, indirect=True)
def test_a_lease_renewal_locks_its_jobs_in_id_order(database_url: str) -> None:
    """A submission waiting for two running jobs of a worker holds them under a shared
    lock, in id order. The worker's renewal used to take them in the order its update
    found them, here the later one first (the heap's order on PostgreSQL, the index's
    on MariaDB): each then waited for the other, and the database aborted one."""
    store = Store(database_url)
    try:
        with _renewal_behind_a_lock(store, shared=True) as it:
            # Not held by the renewal, which waits for the first job before it takes any.
            it.other.execute(_lock(it.ids[1], shared=True))
            it.other.commit()
        assert it.renewed == it.ids
    finally:
        store.close()


@pytest.mark.parametrize("database_url", SERVERS, indirect=True)
def test_a_lease_renewal_leaves_out_a_job_taken_while_it_waited(database_url: str) -> None:
    """The renewal found the job on its worker, then waited for its row: the job went
    to another worker meanwhile. It renews the other job only, and says so."""
    store = Store(database_url)
    try:
        with _renewal_behind_a_lock(store, shared=False) as it:
            it.other.execute(update(jobs).where(jobs.c.id == it.ids[0]).values(worker="w2"))
            it.other.commit()
        assert it.renewed == it.ids[1:]
        assert stored(store, it.ids[0]).lease_expires_at == T0 + ONE_MIN  # the claim's
        assert stored(store, it.ids[1]).lease_expires_at == it.lease_until
    finally:
        store.close()


@pytest.mark.parametrize("database_url", SERVERS, indirect=True)
def test_a_lost_job_whose_row_is_held_does_not_hold_up_the_scheduler(database_url: str) -> None:
    """A session holds a lost job's row (its worker stopped, or cut off, inside a
    transaction). The scheduler's pass recovers the other lost jobs and goes on, not
    waiting with its whole loop (due jobs, schedules) until that session ends; the
    held job is recovered by a pass after it."""
    store = Store(database_url)
    scheduler = Scheduler(store)
    try:
        held, free = add(store, new_job(), new_job())
        claim(store, limit=2)
        later = T0 + 5 * ONE_MIN
        with store.engine.connect() as other, ThreadPoolExecutor(1) as pool:
            try:
                other.execute(_lock(held.id, shared=False))
                pool.submit(scheduler.run_once, later).result(timeout=20)
                assert (stored(store, held.id).state, stored(store, free.id).state) == (
                    RUNNING,
                    JobState.FAILED,
                )
            finally:
                other.rollback()
        scheduler.run_once(later + ONE_MIN)
        assert stored(store, held.id).state == JobState.FAILED
    finally:
        scheduler.stop()
        store.close()


@pytest.mark.parametrize("database_url", SERVERS, indirect=True)
def test_the_dependency_sweep_leaves_a_held_row_to_its_next_pass(database_url: str) -> None:
    """A waiting job whose dependencies are met (a settle was interrupted), its row held by
    another session: the sweep's release passed it by, not waiting with the whole
    scheduler's loop until that session ends; the next sweep releases it."""
    store = Store(database_url)
    try:
        [job] = add(store, new_job())
        with store.engine.begin() as conn:  # as an interrupted settle leaves it
            conn.execute(
                update(jobs).where(jobs.c.id == job.id).values(state="waiting", deps_pending=0)
            )
        with store.engine.connect() as other, ThreadPoolExecutor(1) as pool:
            try:
                other.execute(_lock(job.id, shared=False))
                assert pool.submit(store.deps.release_ready, T0).result(timeout=20) == []
            finally:
                other.rollback()
        assert store.deps.release_ready(T0) == [job.id]
        assert stored(store, job.id).state is JobState.QUEUED
    finally:
        store.close()


@dataclass
class _Renewal:
    other: Connection  # holds the first job's row; the body ends its transaction
    ids: list[int]
    lease_until: datetime
    renewed: list[int] | None = None  # the renewal's answer, once the block is left


@contextmanager
def _renewal_behind_a_lock(store: Store, *, shared: bool) -> Iterator[_Renewal]:
    """Two running jobs of ``w1``, the first's row stored after the second's; another
    connection locks the first (``shared`` or not), then a renewal starts and waits for it. That
    connection is rolled back before the renewal is waited for, whatever the body did,
    so that a failing body cannot leave the renewal waiting for ever."""
    first, second = add(store, new_job(), new_job())
    claim(store, limit=2)
    store.jobs.update_job(JobUpdate(second.id, frozenset({RUNNING}), {"state": PAUSED}), T0)
    with store.engine.begin() as conn:  # the first's row now lies after the second's
        conn.execute(update(jobs).where(jobs.c.id == first.id).values(attempt=jobs.c.attempt))
    later = T0 + 5 * ONE_MIN
    with store.engine.connect() as other, ThreadPoolExecutor(1) as pool:
        other.execute(_lock(first.id, shared=shared))
        it = _Renewal(other, [first.id, second.id], later + ONE_MIN)
        renewal = pool.submit(store.queue.renew_leases, "w1", later, it.lease_until)
        try:
            wait_for(lambda: lock_waits(store, "FOR UPDATE"), what="the renewal's wait")
            yield it
        finally:
            other.rollback()  # nothing left to roll back once the body committed
        it.renewed = renewal.result(timeout=30)


def _lock(job_id: int, *, shared: bool) -> Select[tuple[int]]:
    return select(jobs.c.id).where(jobs.c.id == job_id).with_for_update(read=shared)


def test_live_controls_are_the_workers_live_jobs_with_their_intents(store: Store) -> None:
    a, b, c = add(store, new_job(), new_job(), new_job())
    claim(store, limit=2)
    for job_id, control in ((a.id, Control.PAUSE), (c.id, Control.KILL)):
        store.jobs.update_job(JobUpdate(job_id, frozenset(JobState), {"control": control}), T0)
    assert store.queue.live_controls("w1") == {a.id: Control.PAUSE, b.id: None}
    assert store.queue.live_controls("w2") == {}
    assert store.jobs.delete_job(b.id, frozenset(JobState))  # a forced removal
    assert store.queue.live_controls("w1") == {a.id: Control.PAUSE}


def test_an_idle_poll_claims_what_a_claim_would(store: Store) -> None:
    """A periodic look (``idle_poll``) may look before it locks, but takes the same jobs."""

    def poll(queues: list[str] | None = None, now: datetime = T0) -> list[Job]:
        lease = now + ONE_MIN
        return store.queue.claim_jobs("w1", "host-a", queues, 10, now, lease, idle_poll=True).jobs

    assert poll() == []
    due, _future, bulk = add(
        store, new_job(run_at=T0), new_job(run_at=T0 + ONE_MIN), new_job(queue="bulk")
    )
    assert poll(queues=["other"]) == []
    assert [job.id for job in poll(queues=["default"])] == [due.id]
    assert [job.id for job in poll()] == [bulk.id]
    assert poll() == []
    assert len(poll(now=T0 + ONE_MIN)) == 1


def test_a_claim_tells_of_more_only_for_jobs_it_could_take(store: Store) -> None:
    """A job of a paused queue, or one needing a tag the worker lacks, is no reason to
    claim again; nor, for an idle poll, to take the write lock and look."""
    first, _paused, tagged, second = add(
        store,
        new_job(),
        new_job(queue="held-back"),
        new_job(spec=dataclasses.replace(SPEC, tags=("gpu",))),
        new_job(),
    )
    store.queue.set_queue_paused("held-back", True, T0)

    def one(**options: Any) -> Claimed:
        return store.queue.claim_jobs("w1", "host-a", None, 1, T0, T0 + ONE_MIN, **options)

    def taken(claimed: Claimed) -> tuple[list[int], bool]:
        return [job.id for job in claimed.jobs], claimed.more

    assert taken(one()) == ([first.id], True)
    assert taken(one()) == ([second.id], False)  # a paused and a tagged job left
    assert taken(one(idle_poll=True)) == ([], False)
    assert taken(one(tags=("gpu",))) == ([tagged.id], False)


def test_an_update_may_spare_a_pending_kill_and_clear_only_what_it_carried_out(
    store: Store,
) -> None:
    (job,) = add(store)
    running = frozenset({JobState.QUEUED})

    def update(values: dict[str, Any], **guards: Any) -> Job | None:
        return store.jobs.update_job(JobUpdate(job.id, running, values, **guards), T0)

    assert update({"control": Control.KILL}) is not None
    assert update({"control": Control.PAUSE}, unless_control=Control.KILL) is None
    cleared = update({"priority": 7}, clears=Control.PAUSE)  # a kill is not a pause
    assert cleared is not None
    assert (cleared.priority, cleared.control) == (7, Control.KILL)
    assert update({"control": Control.PAUSE}) is not None
    paused = update({}, unless_control=Control.KILL, clears=Control.PAUSE)
    assert paused is not None
    assert paused.control is None


def test_a_queue_starts_paused_only_while_it_has_no_state(store: Store) -> None:
    store.queue.set_queue_paused("resumed", True, T0)
    store.queue.set_queue_paused("resumed", False, T0)
    store.queue.set_queue_paused("paused", True, T0)
    names = ["resumed", "paused", "new"]
    assert store.queue.start_paused(names, T0) == {"new"}
    assert store.queue.paused_queues() == {"paused", "new"}
    store.queue.set_queue_paused("new", False, T0)
    assert store.queue.start_paused(names, T0) == set()  # a later start changes nothing
    assert store.queue.paused_queues() == {"paused"}


@pytest.mark.sql_only("the statements sent")
def test_an_idle_poll_with_only_a_paused_queues_jobs_only_looks(store: Store) -> None:
    """One plain read, no claim (on SQLite, no write lock taken for nothing)."""
    add(store, new_job(queue="held-back"))
    store.queue.set_queue_paused("held-back", True, T0)
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        polled = store.queue.claim_jobs("w1", "host-a", None, 1, T0, T0 + ONE_MIN, idle_poll=True)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert polled.jobs == []
    assert len(sent) == 1, sent
    assert "FOR UPDATE" not in sent[0]


def test_promote_due_queues_scheduled_jobs_whose_time_has_come(store: Store) -> None:
    due, later, _queued = add(
        store, new_job(state=JobState.SCHEDULED, run_at=T0),
        new_job(state=JobState.SCHEDULED, run_at=T0 + ONE_MIN), new_job(),
    )  # fmt: skip
    assert store.queue.promote_due(T0) == [due.id]
    assert store.queue.promote_due(T0) == []
    assert_fields(stored(store, due.id), state=QUEUED, updated_at=T0)
    assert store.jobs.job_events(due.id)[-1].record.marshal() == {
        "state": "queued",
        "event": "promoted",
    }
    assert stored(store, later.id).state is JobState.SCHEDULED


# -- output --------------------------------------------------------------------
def test_output_is_appended_in_order_and_read_in_pages(store: Store) -> None:
    [job] = add(store)
    long_line = "é" * 65_536
    logs = [
        LogWritten(at=T0, seq=i, stream="stderr" if i % 2 else "stdout", line=f"line {i}")
        for i in range(1, 1001)
    ]
    logs[9] = dataclasses.replace(logs[9], line=long_line)
    progress = ProgressReported(at=T0, fraction=0.5, message="half")
    store.jobs.append_output(job.id, logs, [progress], {"log_lines": 1000, "progress": 0.5})
    page = store.jobs.log_lines(job.id, after_seq=5, limit=10)
    assert [e.seq for e in page] == list(range(6, 16))
    assert page[4] == logs[9]
    assert page[0] == LogWritten(at=T0, seq=6, stream="stdout", line="line 6")
    assert len(store.jobs.log_lines(job.id, after_seq=990)) == 10
    assert_fields(stored(store, job.id), log_lines=1000, progress=0.5, updated_at=T0)
    everything = store.jobs.job_events(job.id, limit=5000)
    kinds = [EventKind.STATE, *[EventKind.LOG] * 1000, EventKind.PROGRESS]
    assert [e.kind for e in everything] == kinds
    assert everything[-1].record == progress
    assert everything[-1].record.marshal() == {"fraction": 0.5, "message": "half"}
    after = store.jobs.job_events(job.id, after_id=everything[500].id, limit=3)
    assert after == everything[501:504]


def test_a_hundred_thousand_lines_are_written_in_batches_and_kept(store: Store) -> None:
    # How fast is measured by bench/, not asserted here (a loaded machine is slow).
    [job] = add(store)
    for batch in range(100):
        logs = [
            LogWritten(at=T0, seq=batch * 1000 + i, stream="stdout", line=f"row {i} " + "x" * 60)
            for i in range(1, 1001)
        ]
        store.jobs.append_output(job.id, logs, [], {"log_lines": (batch + 1) * 1000})
    assert stored(store, job.id).log_lines == 100_000
    assert [e.seq for e in store.jobs.log_lines(job.id, after_seq=99_998)] == [99_999, 100_000]


# -- job types and workers -----------------------------------------------------
def test_job_types_are_created_replaced_listed_and_deleted(store: Store) -> None:
    assert store.job_types.put_job_type("resize", {"python": "m:Resize"}, T0)
    assert store.job_types.put_job_type("export", {"command": ["x"], "queue": "bulk"}, T0)
    assert not store.job_types.put_job_type("resize", {"python": "m:Resize2"}, T0 + ONE_MIN)
    assert store.job_types.get_job_type("resize") == {"python": "m:Resize2"}
    assert store.job_types.get_job_type("nope") is None
    assert list(store.job_types.list_job_types().items()) == [
        ("export", {"command": ["x"], "queue": "bulk"}),
        ("resize", {"python": "m:Resize2"}),
    ]
    assert store.job_types.delete_job_type("resize")
    assert not store.job_types.delete_job_type("resize")
    assert list(store.job_types.list_job_types()) == ["export"]


def test_a_new_job_type_is_added_once_however_many_add_it_at_once(store: Store) -> None:
    """POST of a type: the first writer wins; the others learn the name is taken (they
    read it free a moment before, and each replaced the one before it)."""
    with ThreadPoolExecutor(8) as pool:
        added = list(
            pool.map(
                lambda n: store.job_types.add_job_type("race", {"command": ["echo", str(n)]}, T0),
                range(8),
            )
        )
    assert added.count(True) == 1
    winner = added.index(True)
    assert store.job_types.get_job_type("race") == {"command": ["echo", str(winner)]}
    assert not store.job_types.add_job_type("race", {"command": ["x"]}, T0 + ONE_MIN)


def test_workers_are_registered_replaced_and_forgotten(store: Store) -> None:
    first = WorkerInfo("w2", "host-a", 10, "1.0", ["default"], 2, T0, T0)
    store.workers.register_worker(first)
    store.workers.register_worker(first)  # unchanged: still one row, no error
    store.workers.register_worker(WorkerInfo("w1", "host-b", 11, "1.0", [], 1, T0, T0))
    restarted = dataclasses.replace(first, pid=99, queues=["a", "b"], started_at=T0 + ONE_MIN)
    store.workers.register_worker(restarted)
    assert store.workers.get_worker("w2") == restarted
    assert store.workers.get_worker("w2 ") is None  # exactly (MariaDB's pad spaces)
    store.workers.worker_heartbeat("w2", T0 + 2 * ONE_MIN)
    assert store.workers.get_worker("w2") == dataclasses.replace(
        restarted, heartbeat_at=T0 + 2 * ONE_MIN
    )
    assert [w.name for w in store.workers.list_workers()] == ["w1", "w2"]
    store.workers.unregister_worker("w1")
    assert store.workers.get_worker("w1") is None
    assert [w.name for w in store.workers.list_workers()] == ["w2"]


def test_a_value_the_database_refuses_is_no_outage(store: Store) -> None:
    """MariaDB's CHECK on a JSON column refuses text that is not JSON with an error number
    PyMySQL does not know, which it raises as an OperationalError: it must fail at once,
    not be waited out for ever as the database away (nor answered 503 by the API)."""
    if not isinstance(store, Store) or store.engine.dialect.name == "sqlite":
        pytest.skip("a server's refusal")  # SQLite stores the text as it is
    row = {"definition": "{not json", "created_at": T0, "updated_at": T0, "name": "bad"}
    text = "INSERT INTO job_types (name, definition, created_at, updated_at) "
    text += "VALUES (:name, :definition, :created_at, :updated_at)"
    with pytest.raises(DBAPIError) as refused, store.engine.begin() as conn:
        conn.execute(sql_text(text), row)
    assert not unavailable(refused.value)
