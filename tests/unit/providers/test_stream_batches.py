"""A stream's events come in batches, one per read from the upstream (``stream_batches``), so
the gateway relays and sends what arrived together as one; a failure later in a read comes
after the events before it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import ModelyardError
from modelyard.core.events import Finished, StreamEvent, TextDelta
from modelyard.providers.base import CallContext, ProviderSettings
from modelyard.providers.openai_compatible.adapter import OpenAICompatibleProvider
from modelyard.providers.transport import Transport


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    frame = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(frame) + b"\n\n"


FIRST_READ = _chunk({"role": "assistant", "content": "a"}) + _chunk({"content": "b"})
SECOND_READ = _chunk({"content": "c"}) + _chunk({}, "stop") + b"data: [DONE]\n\n"
ERROR = b'data: {"error": {"message": "the model overloaded", "type": "server_error"}}\n\n'


class Upstream:
    """Writes each part of its body in one write; the next part only once ``go`` is set."""

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


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []

    async def start(upstream: Upstream) -> OpenAICompatibleProvider:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", upstream.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        settings = ProviderSettings(
            name="up", type="openai_compatible", base_url=f"http://127.0.0.1:{port}/v1"
        )
        return OpenAICompatibleProvider(settings, transport)

    transport = Transport()
    yield start
    await transport.aclose()
    for runner in runners:
        await runner.cleanup()


REQUEST = ChatRequest("m", [Message("user", (TextPart("hi"),))], stream=True)


def _texts(batch: list[StreamEvent]) -> list[str]:
    return [e.text for e in batch if isinstance(e, TextDelta)]


async def test_the_events_of_one_read_come_as_one_batch(serve: Any) -> None:
    upstream = Upstream([FIRST_READ, SECOND_READ])
    provider = await serve(upstream)
    batches = provider.stream_batches(REQUEST, "m", CallContext("r1"))
    first = await anext(batches)
    assert _texts(first) == ["a", "b"]  # both events of the first write, together
    upstream.go.set()
    rest = [batch async for batch in batches]
    events = [e for batch in rest for e in batch]
    assert _texts(events) == ["c"] and isinstance(events[-1], Finished)
    assert all(rest)  # never an empty batch


async def test_events_one_by_one_are_the_batches_flattened(serve: Any) -> None:
    upstream = Upstream([FIRST_READ + SECOND_READ])
    provider = await serve(upstream)
    events = [e async for e in provider.stream(REQUEST, "m", CallContext("r1"))]
    assert _texts(events) == ["a", "b", "c"] and isinstance(events[-1], Finished)


async def test_an_error_later_in_a_read_comes_after_the_events_before_it(serve: Any) -> None:
    upstream = Upstream([FIRST_READ + ERROR])
    provider = await serve(upstream)
    batches = provider.stream_batches(REQUEST, "m", CallContext("r1"))
    assert _texts(await anext(batches)) == ["a", "b"]
    with pytest.raises(ModelyardError, match="the model overloaded"):
        await anext(batches)
