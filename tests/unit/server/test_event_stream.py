"""``EventStream``: frames as they come; a client gone ends the sending and closes the frames."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from modelyard.server.http import EventStream


def _frames(closed: asyncio.Event, hold: asyncio.Event | None = None) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        try:
            for n in range(5):
                if hold is not None and n == 1:
                    await hold.wait()  # an upstream that is slow to send the next token
                yield b"data: %d\n\n" % n
        finally:
            closed.set()

    return gen()


async def test_a_send_refused_by_the_server_ends_the_stream_quietly() -> None:
    """ASGI 2.4 servers raise OSError on a send to a client that left."""
    closed = asyncio.Event()
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and sent:
            raise OSError("client gone")
        sent.append(message)

    await EventStream(_frames(closed), {"x-request-id": "r1"})({}, receive, send)
    assert sent[0]["status"] == 200 and (b"x-request-id", b"r1") in sent[0]["headers"]
    assert closed.is_set()


async def test_a_client_leaving_cancels_the_wait_for_the_next_frame() -> None:
    closed, hold, left = asyncio.Event(), asyncio.Event(), asyncio.Event()
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message.get("body") == b"data: 0\n\n":
            left.set()  # the client goes while the next frame is awaited

    await EventStream(_frames(closed, hold), {})({}, receive, send)
    assert closed.is_set() and not hold.is_set()
    assert [m.get("body") for m in sent[1:]] == [b"data: 0\n\n"]  # no end frame: it left
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]  # taken back
