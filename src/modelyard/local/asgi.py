"""The few ASGI pieces the worker needs: reading a body, answering, noticing a client leave.

The worker speaks raw ASGI rather than through a framework because it must be the only reader of
``receive``: after the body, the next message is the client's disconnect, and that is what stops
a generation nobody waits for any more.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Send

from modelyard.core.errors import ModelyardError, PayloadTooLarge
from modelyard.protocols.openai.errors import error_body

_JSON = (b"content-type", b"application/json")
_SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class ClientDisconnected(Exception):
    """The client went away before its request body arrived."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def request_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; larger than ``limit`` bytes is an error."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class Responder:
    """Sends one response and remembers whether it has begun."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def json(
        self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self.started = True
        length = (b"content-length", str(len(body)).encode("ascii"))
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [_JSON, length, *(headers or [])],
            }
        )
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    async def error(self, error: ModelyardError) -> None:
        """Answer with ``error`` in OpenAI's shape; a no-op once the response has begun."""
        if self.started:
            return
        headers: list[tuple[bytes, bytes]] = []
        if error.retry_after is not None:
            seconds = max(1, math.ceil(error.retry_after))
            headers.append((b"retry-after", str(seconds).encode("ascii")))
        await self.json(error.status, error_body(error), headers)

    async def start_stream(self) -> None:
        self.started = True
        await self._send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})

    async def write(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end_stream(self) -> None:
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def run_until_disconnect(work: Coroutine[Any, Any, None], receive: Receive) -> None:
    """Run ``work``; cancel it if the client disconnects first.

    Cancelling is what lets a queued request leave its queue and a running generation stop at the
    next token. Errors of ``work`` propagate; a cancelled ``work`` ends quietly.
    """
    task = asyncio.create_task(work)
    watcher = asyncio.create_task(_wait_for_disconnect(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Also reached when we are cancelled ourselves (server shutdown): never leave work behind.
        watcher.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))
    if not task.cancelled():
        task.result()
