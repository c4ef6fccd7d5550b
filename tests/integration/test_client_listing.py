"""Listing every job with the clients while jobs come and go, on every database.

``iter_jobs`` follows each page's ``next`` cursor: a job removed meanwhile (as a
cleanup loop removes what it is shown) moves no other job past the next page.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from jobyard.client import AsyncClient, Client, Invalid
from tests.harness import Server, shared_server
from tests.integration.test_client_stream import JOB

server = shared_server()
SORTS = ["-created_at", "id", "-priority,created_at", "state,-id"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url) as client:
        yield client


def held(client: Client, name: str, count: int) -> set[int]:
    jobs = [{"type": "echo", "args": {"text": "x"}, "hold": True, "name": name}] * count
    return {job.id for job in client.submit_many(jobs)}


@pytest.mark.parametrize("sort", SORTS)
def test_a_cleanup_loop_removes_every_job_while_others_come(client: Client, sort: str) -> None:
    name = f"cleanup-{uuid.uuid4().hex[:8]}"
    there = held(client, name, 40)
    seen: list[int] = []
    for job in client.iter_jobs(search=name, state="held", sort=sort, per_page=10):
        seen.append(job.id)
        client.remove(job.id, force=True)
        if len(seen) % 10 == 0:  # new ones, before or after the place it has reached
            held(client, name, 2)
    assert there <= set(seen), f"missed {sorted(there - set(seen))}"
    assert len(seen) == len(set(seen))


@pytest.mark.anyio
@pytest.mark.parametrize("sort", SORTS)
async def test_the_async_client_removes_every_job_while_others_come(
    server: Server, sort: str
) -> None:
    name = f"async-cleanup-{uuid.uuid4().hex[:8]}"
    with Client(server.url) as sync:
        there = held(sync, name, 25)
        seen: list[int] = []
        async with AsyncClient(server.url) as client:
            async for job in client.iter_jobs(search=name, sort=sort, per_page=4):
                seen.append(job.id)
                await client.remove(job.id, force=True)
                if len(seen) % 4 == 0:
                    held(sync, name, 1)
    assert there <= set(seen), f"missed {sorted(there - set(seen))}"
    assert len(seen) == len(set(seen))


def test_a_page_tells_where_the_next_starts_and_offsets_still_work(client: Client) -> None:
    name = f"pages-{uuid.uuid4().hex[:8]}"
    made = sorted(held(client, name, 5))
    first = client.jobs(search=name, sort="id", per_page=2)
    assert [job.id for job in first.items] == made[:2]
    assert first.next is not None
    client.remove(made[1], force=True)  # the last one listed: the next page starts after it
    second = client.jobs(search=name, sort="id", per_page=2, after=first.next)
    assert [job.id for job in second.items] == made[2:4]
    assert second.total == 4  # every match, the ones before the cursor too
    last = client.jobs(search=name, sort="id", per_page=2, after=second.next)
    assert ([job.id for job in last.items], last.next) == ([made[4]], None)
    assert [j.id for j in client.jobs(search=name, sort="id", per_page=2, page=2).items] == [
        made[3],
        made[4],
    ]


def test_a_cursor_of_another_sort_or_no_cursor_is_refused(client: Client) -> None:
    held(client, f"cursor-{uuid.uuid4().hex[:8]}", 1)
    page = client.jobs(sort="id", per_page=1)
    assert page.next is not None
    with pytest.raises(Invalid, match="another sort"):
        client.jobs(sort="-id", after=page.next)
    nested = base64.urlsafe_b64encode(b"[" * 2900).decode()  # deeper than a parser recurses
    for bad in ("nonsense", "W10", "WyJpZCJd", page.next[:-3], nested):
        with pytest.raises(Invalid, match="cursor"):
            client.jobs(sort="id", after=bad)
    # Made by hand: a time that is another year in UTC, a lone surrogate (both were 500s).
    for sort, values in (
        ("-created_at", ["0001-01-01T00:00:00+01:00", 5]),
        ("-created_at", ["9999-12-31T23:59:59-01:00", 5]),
        ("type", ["\ud800", 5]),
    ):
        keys = [sort, "-id" if sort.startswith("-") else "id"]
        made = json.dumps([keys, values]).encode()
        with pytest.raises(Invalid, match="bad cursor"):
            client.jobs(sort=sort, after=base64.urlsafe_b64encode(made).decode().rstrip("="))


def test_an_older_server_without_cursors_is_paged_by_numbers() -> None:
    """A server from before cursors answers no ``next`` (and ignores ``after``): taken
    for a last page, its listing stopped after the first page, silently."""
    asked: list[int] = []

    def older(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        asked.append(number)
        ids = {1: [5, 4], 2: [3, 2], 3: [1]}[number]
        items = [JOB | {"id": job_id} for job_id in ids]
        return httpx.Response(200, json={"items": items, "total": 5, "page": number, "per_page": 2})

    with Client("http://jobyard.test", transport=httpx.MockTransport(older)) as client:
        assert [job.id for job in client.iter_jobs(per_page=2)] == [5, 4, 3, 2, 1]
    assert asked == [1, 2, 3]
