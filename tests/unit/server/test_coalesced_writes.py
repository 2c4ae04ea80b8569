"""The served connection's writes: those of one event-loop turn go out as one."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from modelyard.server.protocol import CoalescedWrites
from tests.unit.server.serving import served


class _Transport:
    """What the protocol writes to, recorded."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def _next_turn() -> None:
    """Returns once the event loop has run the callbacks scheduled before this call (the
    flush is one of them)."""
    loop = asyncio.get_running_loop()
    turn = loop.create_future()
    loop.call_soon(turn.set_result, None)
    await turn


async def test_the_writes_of_one_turn_go_out_as_one_at_the_next_turn() -> None:
    transport = _Transport()
    writes = CoalescedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
    writes.write(b"5\r\nhello\r\n")
    writes.write(b"0\r\n\r\n")
    assert transport.writes == []  # nothing yet: more may come in this turn
    await _next_turn()
    assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\n5\r\nhello\r\n0\r\n\r\n"]
    writes.write(b"later")
    await _next_turn()
    assert transport.writes[1:] == [b"later"]  # a lone write is passed on as it is


async def test_closing_sends_what_is_pending_first_and_a_closing_transport_gets_nothing() -> None:
    loop = asyncio.get_running_loop()
    transport = _Transport()
    writes = CoalescedWrites(transport, loop)  # type: ignore[arg-type]
    writes.write(b"last words")
    writes.close()
    assert transport.writes == [b"last words"] and transport.closed
    await _next_turn()  # the flush already scheduled finds nothing left
    assert transport.writes == [b"last words"]

    gone = _Transport()
    writes = CoalescedWrites(gone, loop)  # type: ignore[arg-type]
    writes.write(b"to a client that left")
    gone.closed = True  # the connection was lost before the flush
    await _next_turn()
    assert gone.writes == []


async def test_other_transport_calls_reach_the_transport() -> None:
    writes = CoalescedWrites(_Transport(), asyncio.get_running_loop())  # type: ignore[arg-type]
    assert writes.get_extra_info("peername") == "info:peername"
    assert writes.is_closing() is False


async def _stream_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for part in (b"one ", b"two ", b"three"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.mark.integration
async def test_a_served_response_through_the_protocol_arrives_whole() -> None:
    """uvicorn on the protocol: a chunked response written in five writes, read by a client
    on a keep-alive connection twice (the second request after the first answer)."""
    async with (
        served(_stream_app) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        for _ in range(2):
            answer = await client.get("/")
            assert answer.status_code == 200
            assert answer.content == b"one two three"
