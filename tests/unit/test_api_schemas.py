"""A job's answer built from plain values is the one its response model gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from jobyard.api.schemas import JobOut, SubmitJob, answer, answer_plain, shown_job
from jobyard.models import Job, JobSpec, Sla
from jobyard.states import Control, JobState

NOW = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def _bare() -> Job:
    return Job(
        id=1,
        type="noop",
        name=None,
        args={},
        spec=JobSpec(argv=["true"]),
        queue="default",
        priority=0,
        state=JobState.QUEUED,
        control=None,
        created_at=NOW,
        updated_at=NOW,
    )


def _full() -> Job:
    """Every field set, some as a store may hand them: an int in a float field, NaN."""
    start = NOW - timedelta(minutes=5)
    return Job(
        id=9_007_199_254_740_993,
        type="export",
        name="nightly — ü",
        args={"when": "2026-01-01", "n": 3, "ratio": 0.5, "nested": {"a": [1, None, True]}},
        spec=JobSpec(python="app.jobs:run", args={"n": 3}, sla=Sla(max_runtime=60, factor=3)),
        queue="export",
        priority=-7,
        state=JobState.PAUSED,
        control=Control.RESUME,
        created_at=start,
        updated_at=NOW,
        run_at=start.astimezone(timezone(timedelta(hours=2))),
        started_at=start,
        paused_at=NOW - timedelta(seconds=30),
        paused_seconds=4,
        attempt=2,
        max_attempts=3,
        restart_count=1,
        exit_code=-15,
        error="boom\nline two",
        reason="killed",
        progress=1,
        progress_message="almost",
        metrics={"rows": 12, "rate": float("nan"), "peak": float("inf")},
        details={"slurm": {"id": "42"}},
        output_bytes=2048,
        log_lines=17,
        cpu_seconds=3,
        peak_memory=1 << 33,
        worker="w1",
        host="h1",
        pid=4242,
        idempotency_key="key-1",
        restarted_from=5,
        restarted_as=None,
        wait_seconds=2,
        logs_pruned_at=NOW,
        events_pruned_at=NOW,
    )


@pytest.mark.parametrize("job", [_bare(), _full()], ids=["bare", "full"])
def test_a_job_from_plain_values_is_the_bytes_of_its_model(job: Job) -> None:
    later = NOW + timedelta(seconds=10)
    assert answer_plain(shown_job(job, later)).body == answer(JobOut.of(job, later)).body


@pytest.mark.parametrize("queue", ["default", "nightly.exports-2", "Q_1"])
def test_a_submission_names_a_queue_as_a_job_type_does(queue: str) -> None:
    assert SubmitJob.model_validate({"type": "t", "queue": queue}).queue == queue


@pytest.mark.parametrize(
    "queue",
    [
        "q ",  # MariaDB compares text without its trailing spaces: it would be "q" there
        " q",
        "a/b",  # /api/v1/queues/{name}/pause could not name it
        "two words",
        "",
        "-q",
        "q" * 101,
        "ü",
    ],
)
def test_a_submission_naming_a_queue_no_type_could_is_refused(queue: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SubmitJob.model_validate({"type": "t", "queue": queue})
    assert [error["loc"] for error in caught.value.errors()] == [("queue",)]
