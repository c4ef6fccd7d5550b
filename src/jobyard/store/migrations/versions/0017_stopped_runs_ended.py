"""A stopped workflow run that has no live node left has ended: it gets ``finished_at``.

Before, a stop never set ``finished_at``, so retention (which removes ended runs
by ``finished_at``) kept every stopped run for ever. From now on the run's
refresh sets it when the stop's last node ends; this revision gives the stopped
runs stored before it theirs: when their last job ended, or when they were
stopped (``updated_at``) if none of their jobs is left. A stopped run with a
live node is left alone: it gets ``finished_at`` when that node ends.

The older resume (and a restart while a dependency had failed) also made jobs
that were ``upstream_failed`` at once with no ``finished_at``: retention never
removed them, nor the run they belong to. They get theirs first (when they were
made so, ``updated_at``), and the reason a blocked job has.

Nothing is undone on downgrade: the older code clears ``finished_at`` when it
resumes a run, and reads it nowhere else for a stopped run than in retention.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | None = None
depends_on: str | None = None

# The states of a job that is not over yet, as of this revision.
LIVE = ("held", "scheduled", "waiting", "queued", "running", "paused")

runs = sa.table(
    "workflow_runs",
    sa.column("id"),
    sa.column("state"),
    sa.column("updated_at"),
    sa.column("finished_at"),
)
jobs = sa.table(
    "jobs",
    sa.column("workflow_run"),
    sa.column("state"),
    sa.column("restarted_as"),
    sa.column("finished_at"),
    sa.column("updated_at"),
    sa.column("reason"),
)


def upgrade() -> None:
    op.execute(
        jobs.update()
        .where(jobs.c.state == "upstream_failed", jobs.c.finished_at.is_(None))
        .values(
            finished_at=jobs.c.updated_at,
            reason=sa.func.coalesce(jobs.c.reason, "upstream_failed"),
        )
    )
    of_run = jobs.c.workflow_run == runs.c.id
    live = (
        sa.select(jobs.c.workflow_run)
        .where(of_run, jobs.c.restarted_as.is_(None), jobs.c.state.in_(LIVE))
        .exists()
    )
    last_end = sa.select(sa.func.max(jobs.c.finished_at)).where(of_run).scalar_subquery()
    op.execute(
        runs.update()
        .where(runs.c.state == "stopped", runs.c.finished_at.is_(None), ~live)
        .values(finished_at=sa.func.coalesce(last_end, runs.c.updated_at))
    )


def downgrade() -> None:
    pass
