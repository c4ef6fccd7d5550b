"""/api/v1/jobs/{id}/samples: a job's CPU and memory over time, for plots."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from jobyard.api.params import Attempt, JobId
from jobyard.api.resources import get_node
from jobyard.errors import NotFound
from jobyard.node import Node

router = APIRouter(tags=["jobs"])


class SampleOut(BaseModel):
    attempt: int
    at: datetime
    cpu_seconds: float = Field(description="CPU time of the process tree so far")
    rss: int = Field(description="resident memory of the process tree, bytes")


class SamplesOut(BaseModel):
    job_id: int
    items: list[SampleOut]


@router.get("/api/v1/jobs/{job_id}/samples", response_model=SamplesOut)
async def job_samples(
    job_id: JobId,
    node: Annotated[Node, Depends(get_node)],
    attempt: Attempt = None,
) -> SamplesOut:
    """Samples taken about once a second while the job runs, oldest first. A long run keeps
    at most 720 per attempt (older ones are thinned to every other), and the samples of the
    last three attempts are kept."""
    if await to_thread.run_sync(node.store.jobs.get_job, job_id) is None:
        raise NotFound(f"no job with id {job_id}")
    rows = await to_thread.run_sync(node.store.monitor.samples, job_id, attempt)
    return SamplesOut(job_id=job_id, items=[SampleOut(**row) for row in rows])
