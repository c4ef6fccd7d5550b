"""``jobyard watch`` waits out a server that restarts, as the client's streams do."""

from __future__ import annotations

import threading

import pytest

from jobyard.cli import watch
from jobyard.client.errors import ServerUnreachable


def test_a_refresh_waits_out_a_server_restarting_then_gives_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers: list[object] = [ServerUnreachable("down"), ServerUnreachable("down"), "table"]

    def snapshot() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    changed = threading.Event()
    changed.set()  # no wait for an event
    assert watch._next(snapshot, changed, 0.2) == "table"  # type: ignore[arg-type]
    assert answers == []

    monkeypatch.setattr(watch, "UNREACHABLE_FOR", 0.5)

    def gone() -> object:
        raise ServerUnreachable("down for good")

    changed.set()
    with pytest.raises(ServerUnreachable):  # exit 5, as before, once it is clearly gone
        watch._next(gone, changed, 0.2)  # type: ignore[arg-type]
