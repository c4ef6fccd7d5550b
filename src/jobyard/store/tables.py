"""The schema: SQLAlchemy Core tables, the single source for migrations.

``jobs`` has one column per field of :class:`jobyard.models.Job`. Events and log
lines share ``job_events``, whose id orders everything that happened across jobs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger as BigInt
from sqlalchemy import (
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.sql.expression import false

from jobyard.store.coltypes import BigId, LongText, UTCDateTime, json_column

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Binary collation on MySQL: keys and names compare case-sensitively, as on the other
# backends (an idempotency key "A" is not "a"); searches lower() both sides anyway.
_OPTIONS: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("type", String(200), nullable=False),
    Column("name", String(255)),
    Column("args", json_column(), nullable=False),
    Column("spec", json_column(), nullable=False),
    Column("queue", String(100), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("state", String(20), nullable=False),
    Column("control", String(16)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("run_at", UTCDateTime()),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("paused_at", UTCDateTime()),
    Column("paused_seconds", Double(), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("restart_count", Integer, nullable=False),
    Column("exit_code", Integer),
    Column("error", LongText),
    Column("reason", String(255)),
    Column("progress", Double()),
    Column("progress_message", Text),
    Column("metrics", json_column(), nullable=False),
    Column("details", json_column(), nullable=False),
    Column("output_bytes", BigInt, nullable=False),
    Column("log_lines", BigInt, nullable=False),
    Column("cpu_seconds", Double()),
    Column("peak_memory", BigInt),
    Column("worker", String(255)),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("lease_expires_at", UTCDateTime()),
    Column("idempotency_key", String(255)),
    Column("restarted_from", BigInt),
    Column("restarted_as", BigInt),
    Column("workflow_run", BigInt),  # the workflow run this job is a node of
    Column("node", String(200)),  # ... and which node
    Column("deps_pending", Integer, nullable=False, server_default="0"),
    Column("runtime_seconds", Double()),  # set when an attempt ends (paused time apart)
    Column("wait_seconds", Double()),  # ready (queued) until claimed, set by the claim
    # The tags a worker needs to run it, sorted and comma-joined ("" for none; routing.py).
    Column("route", String(255), nullable=False, server_default=""),
    # When retention removed the log lines / the other events of this finished job.
    Column("logs_pruned_at", UTCDateTime()),
    Column("events_pruned_at", UTCDateTime()),
    sqlite_autoincrement=True,  # a job id is never reused
    **_OPTIONS,
)
# The claim order (priority DESC, id ASC) read straight from the index: without it,
# MariaDB sorts every queued row and FOR UPDATE SKIP LOCKED locks them all, leaving
# nothing for concurrent claimers. The queue filter is checked on the scanned rows.
Index("ix_jobs_claim", jobs.c.state, jobs.c.priority.desc(), jobs.c.id, jobs.c.queue)
Index("ix_jobs_state_run_at", jobs.c.state, jobs.c.run_at)
Index("ix_jobs_worker_state", jobs.c.worker, jobs.c.state)
Index("ix_jobs_state_lease", jobs.c.state, jobs.c.lease_expires_at)
Index("ix_jobs_created_at", jobs.c.created_at)
Index("ix_jobs_type", jobs.c.type)
# A type's recent successful runs (the learned runtime baseline, ``sla: expected: auto``).
Index("ix_jobs_type_state_finished_at", jobs.c.type, jobs.c.state, jobs.c.finished_at)
# Finished jobs by age, for retention.
Index("ix_jobs_state_finished_at", jobs.c.state, jobs.c.finished_at)
Index("ux_jobs_idempotency_key", jobs.c.idempotency_key, unique=True)

job_events = Table(
    "job_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", BigInt, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("seq", BigInt),  # log lines only: their order within the job
    Column("at", UTCDateTime(), nullable=False),
    Column("stream", String(16)),  # log lines only
    Column("line", LongText),  # log lines only
    Column("data", json_column()),  # every other kind
    sqlite_autoincrement=True,  # an event id is never reused: streams resume by id
    **_OPTIONS,
)
Index("ix_job_events_job_id_id", job_events.c.job_id, job_events.c.id)
Index("ix_job_events_job_id_seq", job_events.c.job_id, job_events.c.seq)

Index("ix_jobs_workflow_run_state", jobs.c.workflow_run, jobs.c.state)

workflow_runs = Table(
    "workflow_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workflow", String(200), nullable=False),
    Column("state", String(20), nullable=False),  # running | succeeded | failed | stopped
    Column("args", json_column(), nullable=False),
    Column("trigger", String(200), nullable=False),  # api | schedule:<name>
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    sqlite_autoincrement=True,
    **_OPTIONS,
)
Index("ix_workflow_runs_workflow", workflow_runs.c.workflow)
Index("ix_workflow_runs_created_at", workflow_runs.c.created_at)

notifications = Table(
    "notifications",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event", String(64), nullable=False),  # workflow_failed, …
    Column("job_id", BigInt),
    Column("run_id", BigInt),
    Column("status", String(16), nullable=False),  # recorded | pending | sent | failed
    Column("data", json_column(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("channel", String(100)),  # None: recorded only, no channel wanted it
    Column("recipients", json_column()),
    Column("source_event", BigInt),  # the job event it was made from: made once per channel
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime()),
    Column("claimed_until", UTCDateTime()),  # a dispatcher is sending it until then
    Column("last_error", Text),
    Column("sent_at", UTCDateTime()),
    Column("updated_at", UTCDateTime()),
    sqlite_autoincrement=True,
    **_OPTIONS,
)
Index("ix_notifications_created_at", notifications.c.created_at)
Index(
    "ix_notifications_status_next_attempt_at",
    notifications.c.status,
    notifications.c.next_attempt_at,
)
Index(
    "ux_notifications_source_event_channel",
    notifications.c.source_event,
    notifications.c.channel,
    unique=True,
)

# CPU and memory of a running job over time, for plots (bounded per job: thinned as it grows).
job_samples = Table(
    "job_samples",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", BigInt, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("cpu_seconds", Double(), nullable=False),
    Column("rss", BigInt, nullable=False),
    sqlite_autoincrement=True,
    **_OPTIONS,
)
Index("ix_job_samples_job_id_id", job_samples.c.job_id, job_samples.c.id)

# Where a reader of the event log has got to (e.g. the notifier), kept across restarts.
cursors = Table(
    "cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInt, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    **_OPTIONS,
)

# What removed rows had counted in /metrics (totals.py), so that no counter goes down:
# per metric and labels, a histogram's buckets ("count", "sum", each bound), a
# notification's status. A removal adds to them in its own transaction.
metric_totals = Table(
    "metric_totals",
    metadata,
    Column("metric", String(40), primary_key=True),
    Column("label", String(200), primary_key=True),  # a type, queue or channel; else ''
    Column("event", String(64), primary_key=True),  # a notification's event; else ''
    Column("bucket", String(16), primary_key=True),
    Column("value", Double(), nullable=False),
    **_OPTIONS,
)

# PostgreSQL: the API processes whose live feed listens for new events now, each until
# its lease runs out (renewed while it listens). Inserting an event sends a NOTIFY only
# while one does: every NOTIFY costs each listening backend of the database a
# transaction, workers included, which listen on another channel.
feed_listeners = Table(
    "feed_listeners",
    metadata,
    Column("token", String(64), primary_key=True),
    Column("until", UTCDateTime(), nullable=False),
    **_OPTIONS,
)

queue_state = Table(
    "queue_state",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("paused", Boolean, nullable=False),  # paused: nothing new starts from it
    Column("updated_at", UTCDateTime(), nullable=False),
    **_OPTIONS,
)

schedules = Table(
    "schedules",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("definition", json_column()),  # null: a schedule of the config file (paused state only)
    Column("paused", Boolean, nullable=False),
    # a schedule of the file: its ``paused`` there when last seen (null: not yet)
    Column("file_paused", Boolean),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    **_OPTIONS,
)

schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("schedule", String(200), primary_key=True),
    Column("fire_time", UTCDateTime(), primary_key=True),  # one row per time: fired once
    Column("fired_at", UTCDateTime(), nullable=False),
    Column("job_id", BigInt),
    Column("run_id", BigInt),
    **_OPTIONS,
)

job_dependencies = Table(
    "job_dependencies",
    metadata,
    Column("job_id", BigInt, primary_key=True),  # the job that waits
    Column("upstream_id", BigInt, primary_key=True),  # the job it waits for
    Column("condition", String(16), nullable=False),  # succeeded | failed | finished
    Column("met", Boolean, nullable=False, server_default=false()),  # counted off deps_pending
    **_OPTIONS,
)
Index("ix_job_dependencies_upstream_id", job_dependencies.c.upstream_id)

job_types = Table(
    "job_types",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("definition", json_column(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    **_OPTIONS,
)

workers = Table(
    "workers",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(64), nullable=False),
    Column("queues", json_column(), nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
    Column("state", String(20), nullable=False),  # running | draining
    Column("tags", json_column()),
    Column("lease_timeout", Double()),  # a heartbeat older than this: the worker is lost
    Column("drain_requested_at", UTCDateTime()),  # set through the API; the worker obeys
    Column("drain_timeout", Double()),  # … with this timeout (None: its own)
    **_OPTIONS,
)

# Cluster-wide max_running per queue or job type (limits.py); a claim into a limited
# scope locks its row, so concurrent claims count its running jobs one after the other.
limits = Table(
    "limits",
    metadata,
    Column("scope", String(16), primary_key=True),  # queue | type
    Column("name", String(200), primary_key=True),
    Column("max_running", Integer, nullable=False),
    Column("source", String(16), nullable=False),  # config | api
    Column("updated_at", UTCDateTime(), nullable=False),
    **_OPTIONS,
)

# -- access: users, their API tokens and browser sessions, and the audit log ----------
users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # viewer | operator | admin
    Column("password_hash", String(255), nullable=False),  # Argon2id, never the password
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # A removed user's id is never given again: a request let in as them must not
    # become another user's (store.access checks the name as well).
    sqlite_autoincrement=True,
    **_OPTIONS,
)

# Tokens and sessions are stored as the SHA-256 of the secret: they are long random
# strings, so a fast hash is enough, and a stolen table gives no usable secret.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("user_id", BigInt, nullable=False),  # removed with the user (store.access)
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),  # None: never
    Column("revoked_at", UTCDateTime()),
    # The token this one was made with (None: a password or a session): revoked with it.
    Column("made_by", BigInt),
    sqlite_autoincrement=True,  # a removed token's id is never another's: made_by points at one
    **_OPTIONS,
)
Index("ix_api_tokens_user_id", api_tokens.c.user_id)
Index("ix_api_tokens_made_by", api_tokens.c.made_by)

sessions = Table(
    "sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_id", BigInt, nullable=False),  # removed with the user (store.access)
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    **_OPTIONS,
)
Index("ix_sessions_user_id", sessions.c.user_id)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(100), nullable=False),  # a user's name, or "-" when unknown
    Column("via", String(16), nullable=False),  # password | token | session | cli
    Column("action", String(64), nullable=False),
    Column("target", String(255), nullable=False),
    Column("outcome", String(16), nullable=False),  # ok | denied | failed
    Column("address", String(64), nullable=False),
    Column("detail", json_column()),
    **_OPTIONS,
)
Index("ix_audit_log_at", audit_log.c.at)
Index("ix_audit_log_actor", audit_log.c.actor)
