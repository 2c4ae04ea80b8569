"""``Front``, the one middleware: request ids, the in-flight bound in the path's dialect, and
one access-log line per request with the status the client really got."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from modelyard.server.middleware import EXCHANGE, Exchange, Front


def _root(limit: int, access_log: bool = True) -> Any:
    server = SimpleNamespace(max_in_flight=limit, access_log=access_log)
    settings = SimpleNamespace(server=server)
    return SimpleNamespace(current=SimpleNamespace(settings=settings), observation=None)


def _scope(path: str, rid: str | None = None) -> Scope:
    headers = [(b"x-request-id", rid.encode())] if rid else []
    return {"type": "http", "path": path, "method": "POST", "headers": headers}


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class _App:
    """Answers 200 once released; notes each request's exchange."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0
        self.seen: list[Exchange] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange: Exchange = scope[EXCHANGE]
        self.seen.append(exchange)
        exchange.model = "chat"
        self.entered += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def _call(front: Front, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await front(scope, _receive, send)
    return sent


async def test_beyond_the_bound_a_429_in_the_paths_dialect_and_the_slot_comes_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "modelyard.access")
    app = _App()
    front = Front(app, lambda: _root(1))
    first = asyncio.create_task(_call(front, _scope("/v1/chat/completions", "req-1")))
    while app.entered == 0:
        await asyncio.sleep(0)
    busy = await _call(front, _scope("/v1/messages", "req-2"))
    start, body = busy
    headers = dict(start["headers"])
    assert start["status"] == 429
    assert headers[b"retry-after"] == b"1" and headers[b"request-id"] == b"req-2"
    error = orjson.loads(body["body"])
    assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
    app.release.set()
    assert (await first)[0]["status"] == 200
    assert front.in_flight == 0
    again = await _call(front, _scope("/v1/chat/completions"))
    assert again[0]["status"] == 200
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("req-2 /v1/messages 429 ") and lines[0].endswith("model=-")
    assert lines[1].startswith("req-1 /v1/chat/completions 200 ")
    assert lines[1].endswith("model=chat")
    assert lines[2].startswith("req_") and len(lines) == 3


async def test_the_health_probes_pass_a_full_bound() -> None:
    app = _App()
    front = Front(app, lambda: _root(1))
    held = asyncio.create_task(_call(front, _scope("/v1/embeddings")))
    while app.entered == 0:
        await asyncio.sleep(0)
    app.release.set()  # the held request answers once it runs again; the bound is full now
    assert front.in_flight == 1
    probe = await _call(front, _scope("/readyz"))
    assert probe[0]["status"] == 200
    await held


async def test_a_routes_final_status_and_a_failure_are_what_the_log_says(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "modelyard.access")

    async def stream_then_leave(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        scope[EXCHANGE].status = 499  # the route saw the client leave mid-stream

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("a bug")

    await _call(Front(stream_then_leave, lambda: _root(8)), _scope("/v1/messages", "a"))
    with pytest.raises(RuntimeError):
        await _call(Front(broken, lambda: _root(8)), _scope("/admin/v1/keys", "b"))
    await _call(Front(stream_then_leave, lambda: _root(8, access_log=False)), _scope("/x"))
    lines = [r.getMessage().split(" ")[:3] for r in caplog.records]
    assert lines == [["a", "/v1/messages", "499"], ["b", "/admin/v1/keys", "500"]]


async def test_an_insane_request_id_is_replaced() -> None:
    app = _App()
    app.release.set()
    await _call(Front(app, lambda: _root(8)), _scope("/v1/models", "bad id\r\n"))
    await _call(Front(app, lambda: _root(8)), _scope("/v1/models", "ok-id_1.2:3"))
    assert app.seen[0].rid.startswith("req_") and len(app.seen[0].rid) == 28
    assert app.seen[1].rid == "ok-id_1.2:3"
