"""An OpenAI-shaped SSE upstream that writes each part of its body in one write, the next part
only once the test sets ``go``: what the gateway reads from it together is known."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    """One ``chat.completion.chunk`` SSE event."""
    frame = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(frame) + b"\n\n"


FIRST_READ = chunk({"role": "assistant", "content": "a"}) + chunk({"content": "b"})
SECOND_READ = chunk({"content": "c"}) + chunk({}, "stop") + b"data: [DONE]\n\n"
ERROR = b'data: {"error": {"message": "the model overloaded", "type": "server_error"}}\n\n'


class GatedUpstream:
    """``POST /v1/chat/completions`` answers ``parts``, one write each, each after the first
    once ``go`` is set."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.go = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for n, part in enumerate(self.parts):
            if n:
                await self.go.wait()
            await response.write(part)
        await response.write_eof()
        return response

    async def serve(self) -> AsyncIterator[str]:
        """Serve on a free loopback port for the ``async with``-less life of a fixture:
        yields the base URL (``http://127.0.0.1:<port>/v1``)."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            await runner.cleanup()
