"""A hostile upstream: faults a real vendor might send, in OpenAI's and Anthropic's wire formats.

``Hostile`` serves ``POST /v1/chat/completions`` (OpenAI) and ``POST /v1/messages`` (Anthropic)
with uvicorn on loopback in a background thread. The requested ``model`` picks the fault:

=============== ===========================================================================
model           behaviour
=============== ===========================================================================
``ok``          a good answer (JSON, or a complete stream)
``bad-usage``   a good answer whose usage says ``"prompt_tokens": "abc"`` (``input_tokens``)
``bad-utf8``    a stream whose second content frame carries invalid UTF-8 (a JSON answer
                with an invalid UTF-8 string)
``late-utf8``   as ``bad-utf8``, but the invalid bytes come after two good content frames
``echo-NNN``    status NNN whose error text quotes every request header (keys included)
``echo-stream`` a stream whose first content frame is followed by an in-stream error event
                quoting every request header
``reset``       the connection dropped before any byte of the answer
``partial``     a stream that stops after its first content frames, connection dropped
``garbage``     200 with a body (or SSE data) that is not JSON
``hang``        nothing until the client goes away (or the fake stops)
``stall``       a stream that falls silent after its first content frames (until the client
                goes away or the fake stops)
=============== ===========================================================================

Each request is counted per model (``hits``), so a test can tell a fault was really served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.serving import serve_in_thread

from .openai_faults import AbortConnection, QuietAborts

_BAD_UTF8 = b"\xff\xfe\xc3("  # not UTF-8 in any reading


class Hostile:
    """See the module docstring."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._closing: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._filter = QuietAborts()

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``/v1``); Anthropic's is ``url``."""
        return f"{self.url}/v1"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def __enter__(self) -> Self:
        routes = [
            Route("/v1/chat/completions", self._openai, methods=["POST"]),
            Route("/v1/messages", self._anthropic, methods=["POST"]),
        ]
        app = Starlette(routes=routes, lifespan=self._lifespan)
        self._server, self._thread, self._port = serve_in_thread(app, "hostile", self._filter, 1)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._closing is not None:
            self._loop.call_soon_threadsafe(self._closing.set)
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        logging.getLogger("uvicorn.error").removeFilter(self._filter)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        yield

    def _count(self, model: str) -> None:
        with self._lock:
            self.hits[model] += 1

    async def _openai(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        model, stream = str(body.get("model")), bool(body.get("stream"))
        self._count(model)
        early = await self._early(request, model, "openai")
        if early is not None:
            return early
        if stream and model == "stall":
            return _stream(_openai_frames("partial"), model, self._closing)
        if stream:
            return _stream(_openai_frames(model), model)
        usage: dict[str, Any] = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
        if model == "bad-usage":
            usage["prompt_tokens"] = "abc"
        text = "hello" if model != "bad-utf8" else None
        answer = {
            "id": "chatcmpl-hostile",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text or "INVALID"},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
        raw = orjson.dumps(answer)
        if text is None:
            raw = raw.replace(b"INVALID", _BAD_UTF8)
        return Response(raw, media_type="application/json")

    async def _anthropic(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        model, stream = str(body.get("model")), bool(body.get("stream"))
        self._count(model)
        early = await self._early(request, model, "anthropic")
        if early is not None:
            return early
        if stream and model == "stall":
            return _stream(_anthropic_frames("partial"), model, self._closing)
        if stream:
            return _stream(_anthropic_frames(model), model)
        usage: dict[str, Any] = {"input_tokens": 5, "output_tokens": 2}
        if model == "bad-usage":
            usage["input_tokens"] = "abc"
        answer = {
            "id": "msg_hostile",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "INVALID" if model == "bad-utf8" else "hello"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        raw = orjson.dumps(answer)
        if model == "bad-utf8":
            raw = raw.replace(b"INVALID", _BAD_UTF8)
        return Response(raw, media_type="application/json")

    async def _early(self, request: Request, model: str, wire: str) -> Response | None:
        """The faults that replace the whole answer."""
        if model.startswith("echo-"):
            echoed = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
            text = f"request rejected, we received these headers: {echoed}"
            if model == "echo-stream":
                return _stream(_echo_frames(wire, text, model), model)
            if wire == "openai":
                err: dict[str, Any] = {"error": {"message": text, "type": "server_error"}}
            else:
                err = {"type": "error", "error": {"type": "api_error", "message": text}}
            return Response(orjson.dumps(err), int(model[5:]), media_type="application/json")
        if model == "reset":
            return StreamingResponse(_aborted(), media_type="application/json")
        if model == "garbage":
            if orjson.loads(await request.body()).get("stream"):
                return Response(b"data: {not json\n\n", media_type="text/event-stream")
            return Response(b"{not json", media_type="application/json")
        if model == "hang":
            assert self._closing is not None
            await _until_gone(request, self._closing)
            return Response(b"", 500)
        return None


async def _aborted() -> AsyncIterator[bytes]:
    raise AbortConnection
    yield b""  # pragma: no cover  # makes this an async generator


async def _until_gone(request: Request, closing: asyncio.Event) -> None:
    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    tasks = {asyncio.ensure_future(gone()), asyncio.ensure_future(closing.wait())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _stream(frames: list[bytes], model: str, silence: asyncio.Event | None = None) -> Response:
    async def body() -> AsyncIterator[bytes]:
        for frame in frames:
            yield frame
        if model == "partial":
            raise AbortConnection
        if silence is not None:
            await silence.wait()  # the client's going away cancels this

    return StreamingResponse(body(), media_type="text/event-stream")


def _sse(payload: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


def _bad(frame: bytes) -> bytes:
    return frame.replace(b"INVALID", _BAD_UTF8)


def _openai_frames(model: str) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse(
            {
                "id": "chatcmpl-hostile",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    usage: dict[str, Any] = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    if model == "bad-usage":
        usage["prompt_tokens"] = "abc"
    frames = [chunk({"role": "assistant", "content": ""}), chunk({"content": "hel"})]
    frames.append(chunk({"content": "lo"}))
    if model == "bad-utf8":
        frames[1] = _bad(chunk({"content": "INVALID"}))
    if model == "late-utf8":
        frames.append(_bad(chunk({"content": "INVALID"})))
    if model == "partial":
        return frames
    last = {"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1}
    frames.append(chunk({}, "stop"))
    frames.append(_sse({**last, "model": model, "choices": [], "usage": usage}))
    return [*frames, b"data: [DONE]\n\n"]


def _anthropic_frames(model: str) -> list[bytes]:
    usage: dict[str, Any] = {"input_tokens": 5, "output_tokens": 1}
    if model == "bad-usage":
        usage["input_tokens"] = "abc"
    message: dict[str, Any] = {
        "id": "msg_hostile",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }

    def delta(text: str) -> bytes:
        payload = {"type": "content_block_delta", "index": 0}
        return _sse(
            {**payload, "delta": {"type": "text_delta", "text": text}}, "content_block_delta"
        )

    frames = [
        _sse({"type": "message_start", "message": message}, "message_start"),
        _sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        delta("hel"),
        delta("lo"),
    ]
    if model == "bad-utf8":
        frames[2] = _bad(delta("INVALID"))
    if model == "late-utf8":
        frames.append(_bad(delta("INVALID")))
    if model == "partial":
        return frames
    stop = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}}
    return [
        *frames,
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse({**stop, "usage": {"output_tokens": 2}}, "message_delta"),
        _sse({"type": "message_stop"}, "message_stop"),
    ]


def _echo_frames(wire: str, text: str, model: str) -> list[bytes]:
    """The start of a good stream, then the vendor's in-stream error event quoting ``text``."""
    if wire == "openai":
        frames = _openai_frames(model)[:2]
        return [*frames, _sse({"error": {"message": text, "type": "server_error"}})]
    frames = _anthropic_frames(model)[:3]
    error = {"type": "error", "error": {"type": "api_error", "message": text}}
    return [*frames, _sse(error, "error")]
