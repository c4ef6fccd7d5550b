"""AsyncClient has every method of Client, with the same parameters and results; the
docs list them all."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from jobyard.client import AsyncClient, Client

STREAMS = {
    "iter_jobs",
    "iter_logs",
    "follow_logs",
    "events",
    "all_events",
    "submit_and_follow",
    "follow_run",
}
LIFECYCLE = {"close", "aclose"}
METHODS = sorted(
    name
    for name, member in vars(Client).items()
    if callable(member) and not name.startswith("_") and name not in LIFECYCLE
)


@pytest.mark.parametrize("name", METHODS)
def test_the_async_method_mirrors_the_sync_one(name: str) -> None:
    sync, async_ = getattr(Client, name), getattr(AsyncClient, name)
    before, after = inspect.signature(sync), inspect.signature(async_)
    assert list(before.parameters.values()) == list(after.parameters.values())
    if name in STREAMS:
        assert not inspect.iscoroutinefunction(async_)
        item = before.return_annotation.removeprefix("Iterator[").removesuffix("]")
        assert after.return_annotation == f"AsyncGenerator[{item}, None]"
    else:
        assert inspect.iscoroutinefunction(async_)
        assert before.return_annotation == after.return_annotation
    assert async_.__doc__ == sync.__doc__


def test_the_constructors_take_the_same_arguments() -> None:
    sync = inspect.signature(Client.__init__).parameters
    async_ = inspect.signature(AsyncClient.__init__).parameters
    assert list(sync) == list(async_)


def test_the_cli_page_lists_every_method_and_no_other() -> None:
    page = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    listing = page[page.index("Methods: ") : page.index("Results are frozen dataclasses")]
    listed = re.findall(r"`(\w+)`", listing)
    assert sorted(listed) == METHODS
