"""PostgreSQL: no wake-up for a paused queue's job; a tagged job names its tags; a resume wakes.

Migration 0011 woke every worker of a job's queue whenever the job became
queued: for a job of a paused queue, or one needing tags a worker lacks, each
of them spent a claim's transaction finding nothing to take. Now (see
:mod:`jobyard.events.wakeups`):

- nothing is sent for a job of a paused queue;
- a job that needs tags sends ``t:<route>:<queue>`` (its route, the tags sorted
  and comma-joined, holds no ``:``), one that needs none ``q:<queue>`` as before;
- resuming a queue sends ``q:<queue>``, so that its workers take its jobs at once
  rather than at their next poll.

A worker of an older version reads ``t:`` as "anyone may look", as it reads
any payload it does not know. The insert reads the queue's state in its own
snapshot: a resume committed between the insert and its commit wakes the workers
before they can see the job, which they then find at their next poll.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | None = None
depends_on: str | None = None

LIVE = "('running', 'paused')"

# What a job that became queued sends, unless its queue is paused.
WAKE = """
CREATE OR REPLACE FUNCTION jobs_wake_payload(queue text, route text) RETURNS text AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM queue_state s WHERE s.name = queue AND s.paused) THEN NULL
        WHEN route = '' THEN 'q:' || left(queue, 1000)
        ELSE 't:' || route || ':' || left(queue, 1000)
    END
$$ LANGUAGE sql STABLE
"""

INSERT_FUNCTION = """
CREATE OR REPLACE FUNCTION jobs_notify_insert() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('jobyard_jobs', payload)
    FROM (
        SELECT jobs_wake_payload(queue, route) AS payload
        FROM (SELECT DISTINCT queue, route FROM new_jobs WHERE state = 'queued') AS kinds
    ) AS queued
    WHERE payload IS NOT NULL;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

UPDATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION jobs_notify_update() RETURNS trigger AS $$
DECLARE
    payload text;
BEGIN
    IF NEW.state = 'queued' AND OLD.state IS DISTINCT FROM 'queued' THEN
        payload := jobs_wake_payload(NEW.queue, NEW.route);
        IF payload IS NOT NULL THEN
            PERFORM pg_notify('jobyard_jobs', payload);
        END IF;
    ELSIF OLD.state IN {LIVE} AND NEW.state NOT IN {LIVE} AND EXISTS (
        SELECT 1 FROM limits
        WHERE (scope = 'queue' AND name = NEW.queue) OR (scope = 'type' AND name = NEW.type)
    ) THEN
        PERFORM pg_notify('jobyard_jobs', 'q:' || left(NEW.queue, 1000));
    END IF;
    IF NEW.control IS NOT NULL AND NEW.control IS DISTINCT FROM OLD.control
            AND NEW.worker IS NOT NULL THEN
        PERFORM pg_notify('jobyard_jobs', 'c:' || left(NEW.worker, 1000));
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

RESUME_FUNCTION = """
CREATE OR REPLACE FUNCTION queue_state_notify_resume() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('jobyard_jobs', 'q:' || left(NEW.name, 1000));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(WAKE)
    op.execute(INSERT_FUNCTION)
    op.execute(UPDATE_FUNCTION)
    op.execute(RESUME_FUNCTION)
    op.execute(
        "CREATE TRIGGER queue_state_notify_resume AFTER UPDATE OF paused ON queue_state "
        "FOR EACH ROW WHEN (OLD.paused AND NOT NEW.paused) "
        "EXECUTE FUNCTION queue_state_notify_resume()"
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS queue_state_notify_resume ON queue_state")
    op.execute("DROP FUNCTION IF EXISTS queue_state_notify_resume()")
    # The functions stay, sending what revision 0011 sent: q:<queue> for any job.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION jobs_wake_payload(queue text, route text) RETURNS text AS $$
            SELECT 'q:' || left(queue, 1000)
        $$ LANGUAGE sql STABLE
        """
    )
