"""PostgreSQL: NOTIFY listeners when events or jobs are written (other backends poll).

``jobyard_events`` wakes the API's live feed; ``jobyard_jobs`` wakes workers
when a job is submitted, released or given a control intent. One notification
per statement (statement-level triggers), so a batch of a thousand log lines
wakes the listeners once.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

TRIGGERS = {
    # channel: (trigger, table, what fires it)
    "jobyard_events": ("job_events_notify", "job_events", "INSERT"),
    "jobyard_jobs": ("jobs_notify", "jobs", "INSERT OR UPDATE OF state, control"),
}


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for channel, (trigger, table, when) in TRIGGERS.items():
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION {trigger}() RETURNS trigger AS $$
            BEGIN
                PERFORM pg_notify('{channel}', '');
                RETURN NULL;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            f"CREATE TRIGGER {trigger} AFTER {when} ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {trigger}()"
        )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for trigger, table, _ in TRIGGERS.values():
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {trigger}()")
