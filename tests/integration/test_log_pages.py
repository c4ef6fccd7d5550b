"""A page of a job's log that says the job ended holds every line the job wrote."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from jobyard.api.app import create_app
from jobyard.config import load_config
from jobyard.manager import Submission
from jobyard.node import Node
from jobyard.settings import Settings
from tests.harness import CONFIG

PASSWORD = "a-long-enough-password"


def test_a_log_page_reads_the_jobs_state_before_its_lines(tmp_path: Path) -> None:
    # A job's lines are all stored before its end. Read the other way round, a line
    # stored between the two reads was missing from a page that said the job was over,
    # and a client that stops at the end lost it (seen on PostgreSQL and MariaDB).
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'pages.db'}", admin_password=PASSWORD)
    node = Node(settings, load_config(CONFIG), worker=False, scheduler=False)
    reads: list[str] = []
    manager = node.manager

    def noted(name: str, read: Callable[..., Any]) -> Callable[..., Any]:
        def noting(*args: Any, **kwargs: Any) -> Any:
            reads.append(name)
            return read(*args, **kwargs)

        return noting

    async def page(job_id: int) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(node, manage_node=False))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", auth=("admin", PASSWORD)
        ) as client:
            return await client.get(f"/api/v1/jobs/{job_id}/logs")

    node.start()
    try:
        job, _ = manager.submit(Submission(type="echo", args={"text": "x"}, hold=True))
        manager.get = noted("state", manager.get)  # type: ignore[method-assign]
        jobs = node.store.jobs
        jobs.log_lines = noted("lines", jobs.log_lines)  # type: ignore[method-assign]
        response = asyncio.run(page(job.id))
    finally:
        node.stop()
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "held"
    assert reads == ["state", "lines"]
