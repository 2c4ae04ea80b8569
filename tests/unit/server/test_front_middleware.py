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
from tests.waiting import DEADLINE_S


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
        self.in_app = asyncio.Event()  # a request has entered
        self.seen: list[Exchange] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange: Exchange = scope[EXCHANGE]
        self.seen.append(exchange)
        exchange.model = "chat"
        self.entered += 1
        self.in_app.set()
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
    async with asyncio.timeout(DEADLINE_S):
        await app.in_app.wait()
    busy = await _call(front, _scope("/v1/messages", "req-2"))
    start, body = busy
    headers = dict(start["headers"])
    assert start["status"] == 429
    assert headers[b"retry-after"] == b"1" and headers[b"x-client-request-id"] == b"req-2"
    assert headers[b"request-id"] == headers[b"x-request-id"]
    assert headers[b"request-id"].startswith(b"req_")
    error = orjson.loads(body["body"])
    assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
    app.release.set()
    assert (await first)[0]["status"] == 200
    assert front.in_flight == 0
    again = await _call(front, _scope("/v1/chat/completions"))
    assert again[0]["status"] == 200
    lines = [r.getMessage().split(" ", 1) for r in caplog.records]
    assert all(rid.startswith("req_") for rid, _ in lines)
    assert lines[0][1].startswith("/v1/messages 429 ")
    assert lines[0][1].endswith("model=- client_id=req-2")
    assert lines[1][1].startswith("/v1/chat/completions 200 ")
    assert lines[1][1].endswith("model=chat client_id=req-1")
    assert lines[2][1].endswith("model=chat") and len(lines) == 3


async def test_the_health_probes_pass_a_full_bound() -> None:
    app = _App()
    front = Front(app, lambda: _root(1))
    held = asyncio.create_task(_call(front, _scope("/v1/embeddings")))
    async with asyncio.timeout(DEADLINE_S):
        await app.in_app.wait()
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
    failed = await _call(Front(broken, lambda: _root(8)), _scope("/admin/v1/keys", "b"))
    assert failed[0]["status"] == 500
    await _call(Front(stream_then_leave, lambda: _root(8, access_log=False)), _scope("/x"))
    access = [r for r in caplog.records if r.name == "modelyard.access"]
    lines = [r.getMessage().split(" ")[1:3] for r in access]
    assert lines == [["/v1/messages", "499"], ["/admin/v1/keys", "500"]]


@pytest.mark.parametrize(
    ("path", "dialect"),
    [
        ("/v1/messages", "anthropic"),
        ("/v1/messages/count_tokens", "anthropic"),
        ("/v1beta/models/chat:generateContent", "gemini"),
        ("/v1/models/chat:streamGenerateContent", "gemini"),
        ("/v1/x", "openai"),
    ],
)
async def test_an_unexpected_exception_is_a_500_in_the_paths_dialect_and_one_short_line(
    caplog: pytest.LogCaptureFixture, path: str, dialect: str
) -> None:
    """Issue 17 #10: the traceback is logged once per site (type, file, line), then each
    request is one line with its request id; the client gets the id in its own dialect."""
    caplog.set_level(logging.INFO, "modelyard.server")

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("secret-ish detail")

    front = Front(broken, lambda: _root(8))
    answers = [await _call(front, _scope(path)) for _ in range(3)]
    for start, body in answers:
        assert start["status"] == 500
        rid = dict(start["headers"])[b"x-request-id"].decode()
        error = orjson.loads(body["body"])
        if dialect == "anthropic":
            assert error["type"] == "error" and error["error"]["type"] == "api_error"
            assert error["request_id"] == rid
        elif dialect == "gemini":
            assert error["error"]["status"] == "INTERNAL" and error["error"]["code"] == 500
        else:
            assert error["error"]["type"] == "server_error"
        assert rid in body["body"].decode() and b"secret-ish" not in body["body"]
    records = [r for r in caplog.records if r.name == "modelyard.server"]
    assert len(records) == 3
    assert [r.exc_info is not None for r in records] == [True, False, False]
    assert all("KeyError at " in r.getMessage() for r in records)
    assert all(len(r.getMessage()) < 300 for r in records)


async def test_a_failure_after_the_answer_began_sends_nothing_more() -> None:
    async def half(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("after the start")

    sent = await _call(Front(half, lambda: _root(8)), _scope("/v1/chat/completions"))
    assert [m["type"] for m in sent] == ["http.response.start"]


async def test_the_request_id_is_ours_and_a_clients_sane_id_travels_along() -> None:
    """Issue 17 #11: a client-chosen id could repeat in the ledger, so the request id is
    always a fresh one of ours; the client's (when sane) comes back in x-client-request-id."""
    app = _App()
    app.release.set()
    insane = await _call(Front(app, lambda: _root(8)), _scope("/v1/models", "bad id\r\n"))
    sane = [await _call(Front(app, lambda: _root(8)), _scope("/v1/models", "ok-id_1.2:3"))]
    sane.append(await _call(Front(app, lambda: _root(8)), _scope("/v1/models", "ok-id_1.2:3")))
    ids = [seen.rid for seen in app.seen]
    assert all(rid.startswith("req_") and len(rid) == 28 for rid in ids)
    assert len(set(ids)) == 3
    assert [seen.client_rid for seen in app.seen] == [None, "ok-id_1.2:3", "ok-id_1.2:3"]
    assert b"x-client-request-id" not in dict(insane[0]["headers"])
    for start, _ in sane:
        assert dict(start["headers"])[b"x-client-request-id"] == b"ok-id_1.2:3"


async def test_the_bound_covers_embeddings_count_tokens_and_admin() -> None:
    """Issue 17 #11: every route but the health probes counts against the bound (the admin
    API too: its usage queries are the dearest requests the server answers)."""
    app = _App()
    front = Front(app, lambda: _root(1))
    held = asyncio.create_task(_call(front, _scope("/v1/chat/completions")))
    async with asyncio.timeout(DEADLINE_S):
        await app.in_app.wait()
    for path in ("/v1/embeddings", "/v1/messages/count_tokens", "/admin/v1/usage", "/v1/models"):
        start, _ = await _call(front, _scope(path))
        assert start["status"] == 429, path
    assert app.entered == 1
    app.release.set()
    await held
    assert front.in_flight == 0


def test_request_ids_are_unique_and_in_time_order() -> None:
    """The ledger's unique index (revision 0013) takes time-ordered ids at its right edge."""
    from modelyard.server.middleware import fresh_request_id

    ids = [fresh_request_id() for _ in range(2_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 28 and i.startswith("req_") for i in ids)
    stamps = [int(i[4:15], 16) for i in ids]  # milliseconds since the epoch
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("shape", [list, tuple, iter], ids=["list", "tuple", "iterator"])
async def test_headers_are_read_from_any_iterable_of_pairs_the_first_of_a_name_counting(
    shape: Any,
) -> None:
    # ASGI's headers are an iterable of two-item iterables: not always a list of tuples.
    pairs = [[b"x-request-id", b"mine"], (b"accept", b"*/*"), (b"x-request-id", b"later")]
    app = _App()
    app.release.set()
    scope: Scope = {"type": "http", "path": "/v1/models", "method": "GET"}
    scope["headers"] = shape(pairs)
    start, _body = await _call(Front(app, lambda: _root(10, access_log=False)), scope)
    assert start["status"] == 200
    (exchange,) = app.seen
    assert exchange.client_rid == "mine"
    assert dict(exchange.headers) == {b"x-request-id": b"mine", b"accept": b"*/*"}
    assert [tuple(pair) for pair in scope["headers"]] == [tuple(p) for p in pairs]  # still there
