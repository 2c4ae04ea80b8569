"""A client leaving mid-stream, told to the request by the server (``server.protocol.Leaving``,
the scope's ``modelyard.leave`` extension): the stream's sending is cancelled and its frames
closed, with no task waiting on ``receive``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from modelyard.server.http import EventStream
from modelyard.server.protocol import GracefulHttpToolsProtocol, Leaving, leaving
from tests.unit.server.serving import served


class _App:
    """An endless stream after its first frame; records how it ended."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.receives = 0
        self.notices: list[Leaving | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.notices.append(leaving(scope))

        async def counted() -> Any:
            self.receives += 1
            return await receive()

        await EventStream(self._frames(), {})(scope, counted, send)

    async def _frames(self) -> AsyncIterator[bytes]:
        try:
            yield b"data: first\n\n"
            await asyncio.Event().wait()  # an upstream that never sends the next token
            yield b"data: never\n\n"
        finally:
            self.closed.set()


@pytest.mark.integration
async def test_a_client_leaving_mid_stream_closes_the_frames_without_a_receive() -> None:
    app = _App()
    async with served(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        await writer.drain()
        await reader.readuntil(b"data: first\n\n")  # the stream is under way
        writer.close()
        await writer.wait_closed()
        await app.closed.wait()  # the endless wait for the next frame was cut short
    assert isinstance(app.notices[0], Leaving)
    assert app.notices[0].callback is None  # cleared once the stream ended
    assert app.receives == 0  # told by the server, not found by a task on receive


class _Cycle:
    def __init__(self, disconnected: bool) -> None:
        self.disconnected = disconnected


def _protocol(notice: Leaving, disconnected: bool) -> Any:
    """The protocol's own part of ``connection_lost``, on a stand-in for uvicorn's state."""
    protocol = GracefulHttpToolsProtocol.__new__(GracefulHttpToolsProtocol)
    protocol._leaving = notice
    protocol.cycle = _Cycle(disconnected)  # type: ignore[assignment]
    return protocol


@pytest.mark.parametrize("disconnected", [True, False])
def test_the_notice_is_given_once_and_only_for_an_answer_cut_short(
    monkeypatch: pytest.MonkeyPatch, disconnected: bool
) -> None:
    monkeypatch.setattr(uvicorn_protocol_base(), "connection_lost", lambda self, exc: None)
    calls: list[str] = []
    notice = Leaving()
    notice.callback = lambda: calls.append("left")
    protocol = _protocol(notice, disconnected)
    protocol.connection_lost(None)
    protocol.connection_lost(None)
    assert calls == (["left"] if disconnected else [])


def uvicorn_protocol_base() -> type:
    return GracefulHttpToolsProtocol.__mro__[1]


def test_no_extension_means_no_notice() -> None:
    assert leaving({}) is None
    assert leaving({"extensions": None}) is None
    assert leaving({"extensions": {"http.response.trailers": {}}}) is None
