"""A HEAD ends with its headers whatever the server does after them.

tests/integration/test_api_http.py checks HEAD through the real server; uvicorn
also tells a stream that its client is gone once a HEAD's answer is complete.
A server that does not (ASGI spec 2.4: Starlette then stops listening for it)
must not leave a HEAD's stream running either: :class:`HeadAsGet` stops the app
at its headers, before the stream's first step.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from starlette.types import Message

from jobyard.api.methods import HeadAsGet
from tests.asgi import scope


def test_a_head_of_an_endless_stream_ends_before_the_stream_starts() -> None:
    started: list[bool] = []

    async def endless() -> AsyncIterator[bytes]:
        started.append(True)
        while True:
            yield b"data: x\n\n"
            await anyio.sleep(0.01)

    app = FastAPI()

    @app.get("/events")
    def events() -> StreamingResponse:
        return StreamingResponse(endless(), media_type="text/event-stream")

    sent: list[Message] = []

    async def never_gone() -> Message:  # a server that never says the client left
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    async def head() -> None:
        with anyio.fail_after(5):
            await HeadAsGet(app)(scope("HEAD", "/events"), never_gone, send)

    asyncio.run(head())
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    assert (sent[1]["body"], sent[1]["more_body"]) == (b"", False)
    assert started == []
