"""Through the real app: what the upstream sent in one read goes to the client in one write
(one ASGI body message), whatever the number of events in it."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import orjson

from modelyard.config.schema import Settings
from modelyard.server.app import create_app
from tests.fakes.gated_sse import FIRST_READ, SECOND_READ, GatedUpstream


def _settings(base_url: str) -> Settings:
    return Settings.model_validate(
        {
            "local": {"enabled": False},
            "providers": {"up": {"type": "openai_compatible", "base_url": base_url}},
            "deployments": {"chat": {"targets": [{"provider": "up", "model": "m"}]}},
        }
    )


def _texts(body: bytes) -> list[str]:
    out = []
    for event in body.split(b"\n\n"):
        if event.startswith(b"data: {"):
            for choice in orjson.loads(event[6:])["choices"]:
                out.append(choice["delta"].get("content", ""))
    return out


async def test_the_events_of_one_upstream_read_are_one_write_to_the_client() -> None:
    upstream = GatedUpstream([FIRST_READ, SECOND_READ])
    served = upstream.serve()
    app = create_app(_settings(await anext(served)))
    body = orjson.dumps(
        {"model": "chat", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    length = str(len(body)).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "headers": [(b"content-type", b"application/json"), (b"content-length", length)],
    }  # fmt: skip
    bodies: list[bytes] = []
    first = asyncio.Event()
    done = asyncio.Event()
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if given:
            await done.wait()  # a client that stays until the answer is over
            return {"type": "http.disconnect"}
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])
            first.set()

    try:
        async with app.router.lifespan_context(app):
            call = asyncio.create_task(app(scope, receive, send))
            await first.wait()
            assert _texts(bodies[0]) == ["a", "b"]  # two events of one read: one write
            upstream.go.set()
            await call
    finally:
        done.set()
        await served.aclose()  # type: ignore[attr-defined]
    assert _texts(b"".join(bodies)) == ["a", "b", "c", ""]
    assert bodies[-2] == b"data: [DONE]\n\n" and bodies[-1] == b""
