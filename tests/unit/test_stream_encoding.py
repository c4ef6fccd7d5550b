"""Each event is encoded once for every follower of a stream, within a bounded memory."""

from __future__ import annotations

from jobyard.api.streams import _Encoded


def test_an_event_is_encoded_once_and_old_ones_are_forgotten() -> None:
    calls: list[int] = []

    def encoder(event_id: int) -> bytes:
        calls.append(event_id)
        return f"data: {event_id}\n\n".encode()

    cache = _Encoded(size=2)
    for _ in range(3):  # three followers of the same stream
        assert cache.get("global", 1, lambda: encoder(1)) == b"data: 1\n\n"
    assert calls == [1]
    assert cache.get("job", 1, lambda: encoder(1)) == b"data: 1\n\n"  # another stream kind
    assert cache.get("global", 2, lambda: encoder(2)) == b"data: 2\n\n"
    assert calls == [1, 1, 2]
    cache.get("global", 1, lambda: encoder(1))  # forgotten: the cache holds two
    assert calls == [1, 1, 2, 1]
