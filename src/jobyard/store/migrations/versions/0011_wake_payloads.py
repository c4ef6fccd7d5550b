"""PostgreSQL: a ``jobyard_jobs`` NOTIFY says what happened, so only the workers concerned look.

Before, every insert and every change of a job's state or control sent an
empty notification, and every worker woke for a full look. Now the payload
names what a worker can act on (see :mod:`jobyard.events.wakeups`):

- ``q:<queue>`` when a job becomes queued (inserted queued, or moved to
  ``queued``), and when a running or paused job of a limited queue or type
  ends, which frees a slot of a limit shared by the cluster;
- ``c:<worker>`` when a control is recorded on a job that a worker runs;
- nothing for other changes (claimed, succeeded, failed, …).

Inserts notify once per statement and queue (a transition table); updates
notify per row, which PostgreSQL folds into one notification per distinct
payload and transaction. Names are cut to 1,000 characters, so a payload stays
far under NOTIFY's 8,000-byte limit; a cut name reads as "anyone may look".

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

LIVE = "('running', 'paused')"

INSERT_FUNCTION = """
CREATE OR REPLACE FUNCTION jobs_notify_insert() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('jobyard_jobs', 'q:' || left(queue, 1000))
    FROM (SELECT DISTINCT queue FROM new_jobs WHERE state = 'queued') AS queued;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

UPDATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION jobs_notify_update() RETURNS trigger AS $$
BEGIN
    IF NEW.state = 'queued' AND OLD.state IS DISTINCT FROM 'queued' THEN
        PERFORM pg_notify('jobyard_jobs', 'q:' || left(NEW.queue, 1000));
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

# The WHEN clause is checked without calling the function: most updates cost nothing.
UPDATE_WHEN = f"""
(NEW.state = 'queued' AND OLD.state IS DISTINCT FROM 'queued')
OR (OLD.state IN {LIVE} AND NEW.state NOT IN {LIVE})
OR (NEW.control IS NOT NULL AND NEW.control IS DISTINCT FROM OLD.control)
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS jobs_notify ON jobs")
    op.execute("DROP FUNCTION IF EXISTS jobs_notify()")
    op.execute(INSERT_FUNCTION)
    op.execute(UPDATE_FUNCTION)
    op.execute(
        "CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs "
        "REFERENCING NEW TABLE AS new_jobs "
        "FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify_insert()"
    )
    op.execute(
        "CREATE TRIGGER jobs_notify_update AFTER UPDATE OF state, control ON jobs "
        f"FOR EACH ROW WHEN ({UPDATE_WHEN}) EXECUTE FUNCTION jobs_notify_update()"
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for trigger in ("jobs_notify_insert", "jobs_notify_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON jobs")
        op.execute(f"DROP FUNCTION IF EXISTS {trigger}()")
    # As revision 0002 made it: an empty notification per statement.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION jobs_notify() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('jobyard_jobs', '');
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF state, control ON jobs "
        "FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify()"
    )
