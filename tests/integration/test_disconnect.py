"""A client that goes away mid-stream cancels the upstream request: no orphaned generation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.server import RunningServer
from tests.waiting import DEADLINE_S

MODEL = "endless-stream"


def _chunk(text: str) -> bytes:
    body = {
        "id": "chatcmpl-x",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


def test_client_disconnect_cancels_the_upstream(gateway: RunningServer, fake_upstream: FakeOpenAI):
    sent = {"chunks": 0}
    cancelled = threading.Event()

    async def handler(request: Request, body: dict[str, Any]) -> Response:
        async def frames() -> AsyncIterator[bytes]:
            try:
                while True:  # would stream forever if nobody stopped it
                    sent["chunks"] += 1
                    yield _chunk("tick ")
                    await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        return StreamingResponse(frames(), media_type="text/event-stream")

    fake_upstream.script(MODEL, handler)
    # The "endless" deployment targets the scripted model on the fake upstream.
    payload = {"model": "endless", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    try:
        with httpx.stream(
            "POST", f"{gateway.base_url}/chat/completions", json=payload, timeout=10
        ) as resp:
            assert resp.status_code == 200
            for line in resp.iter_lines():
                if line.startswith("data: ") and "tick" in line:
                    break
        # The client is gone; the gateway must close its upstream stream promptly.
        # Cancelled, the endless generator has ended: no chunk can follow.
        assert cancelled.wait(DEADLINE_S), "the upstream kept streaming after the client left"
    finally:
        fake_upstream.unscript(MODEL)
