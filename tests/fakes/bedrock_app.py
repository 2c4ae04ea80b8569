"""The ASGI application behind ``FakeBedrock``: recording, authentication, routing, faults.

Routing works on the raw path, as the service does: ``/model/{modelId}/{operation}`` where the
model id is one percent-encoded segment (an ARN's ``/`` must arrive as ``%2F``) and the
operation is ``converse``, ``converse-stream`` or ``invoke``. Anything else is Bedrock's 404
``UnknownOperationException``.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from . import bedrock_sigv4 as sigv4
from .bedrock_converse import (
    Invalid,
    build_answer,
    converse_body,
    stream_frames,
    validate,
)
from .bedrock_frames import exception_frame
from .bedrock_wire import (
    Fault,
    InvalidEmbedding,
    error_response,
    failure,
    json_response,
    parse_fault,
    titan_embedding,
)
from .openai_faults import AbortConnection, pause, split_retry_after, with_retry_after

OPERATIONS = ("converse", "converse-stream", "invoke")
EVENT_STREAM = "application/vnd.amazon.eventstream"
# A good stream's first frames (messageStart and two deltas) go out before a mid-stream fault.
FRAMES_BEFORE_FAULT = 3
THROTTLED = "Too many requests, please wait before trying again."


@dataclass(frozen=True, slots=True)
class BedrockRequest:
    """One request as the fake received it; ``path`` is the raw (still encoded) path."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any
    model_id: str | None
    operation: str | None


@dataclass(slots=True)
class FakeBedrockState:
    credentials: sigv4.Credentials
    region: str
    api_key: str | None
    record: Callable[[BedrockRequest], None]
    closing: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    _serials: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def serial(self) -> int:
        with self._lock:
            return next(self._serials)


class BedrockApp:
    def __init__(self, state: FakeBedrockState) -> None:
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        raw = await _read_body(receive)
        if raw is None:
            return  # the client left before finishing its request
        request = self._arrived(scope, raw)
        self._state.record(request)
        request_id = f"{self._state.serial():08x}-fake-4bed-8roc-k00000000000"
        response = await self._respond(request, raw, receive, request_id)
        await response(scope, _replaying(raw, receive), send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._state.closing = asyncio.Event()
                self._state.loop = asyncio.get_running_loop()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _arrived(self, scope: Scope, raw: bytes) -> BedrockRequest:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        parts = raw_path.split("/")
        routed = (
            len(parts) == 4 and parts[0] == "" and parts[1] == "model" and parts[3] in OPERATIONS
        )
        return BedrockRequest(
            method=scope["method"],
            path=raw_path,
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=raw,
            json=_parse_json(raw),
            model_id=unquote(parts[2]) if routed else None,
            operation=parts[3] if routed else None,
        )

    async def _respond(
        self, request: BedrockRequest, raw: bytes, receive: Receive, request_id: str
    ) -> Response:
        arrived = sigv4.Arrived(request.method, request.path, request.query, request.headers, raw)
        state = self._state
        denial = sigv4.check(arrived, state.credentials, state.region, state.api_key)
        if denial is not None:
            return error_response(403, denial.error, denial.message, request_id)
        if request.model_id is None or request.operation is None or request.method != "POST":
            return error_response(
                404, "UnknownOperationException", "UnknownOperationException", request_id
            )
        if not isinstance(request.json, dict):
            return error_response(
                400,
                "ValidationException",
                "Malformed input request, please reformat your input and try again.",
                request_id,
            )
        fault = parse_fault(request.model_id)
        early = await self._preflight(fault, receive, request_id)
        if early is not None:
            early = with_retry_after(early, split_retry_after(request.model_id)[1])
        if early is not None:
            return early
        if request.operation == "invoke":
            return self._invoke(request.model_id, request.json, request_id)
        return self._converse(request, fault, request_id)

    async def _preflight(
        self, fault: Fault | None, receive: Receive, request_id: str
    ) -> Response | None:
        closing = self._state.closing
        assert closing is not None, "the fake Bedrock app was used without its lifespan"
        if fault is None:
            return None
        if fault.name == "fail":
            return failure(fault.amount, request_id)
        if fault.name == "slow" and not await pause(fault.amount / 1000, closing):
            return failure(500, request_id)
        if fault.name == "hang":
            await _hang(receive, closing)
            return failure(500, request_id)  # sent to a closed connection, or at shutdown
        return None

    def _invoke(self, model: str, body: Any, request_id: str) -> Response:
        if "titan-embed-text" not in model:
            return error_response(
                400, "ValidationException", "The provided model identifier is invalid.", request_id
            )
        try:
            return json_response(titan_embedding(model, body), request_id)
        except InvalidEmbedding as exc:
            return error_response(400, "ValidationException", str(exc), request_id)

    def _converse(self, request: BedrockRequest, fault: Fault | None, request_id: str) -> Response:
        try:
            validate(request.json)
        except Invalid as exc:
            return error_response(400, "ValidationException", str(exc), request_id)
        answer = build_answer(request.json, request.model_id or "", self._state.serial())
        if request.operation == "converse":
            payload = orjson.dumps(converse_body(answer))
            if fault is not None and fault.name == "drop-mid-stream":
                return _streamed(
                    [payload[: len(payload) // 2]], "application/json", request_id, abort=True
                )
            return json_response(converse_body(answer), request_id)
        frames = stream_frames(answer)
        name = fault.name if fault is not None else ""
        if name == "drop-mid-stream":
            return _streamed(frames[:FRAMES_BEFORE_FAULT], EVENT_STREAM, request_id, abort=True)
        if name == "truncated-stream":
            return _streamed(frames[:-1], EVENT_STREAM, request_id, abort=False)  # no metadata
        if name == "exception-mid-stream":
            broken = [
                *frames[:FRAMES_BEFORE_FAULT],
                exception_frame("throttlingException", THROTTLED),
            ]
            return _streamed(broken, EVENT_STREAM, request_id, abort=False)
        return _streamed(frames, EVENT_STREAM, request_id, abort=False)


def _streamed(
    pieces: Sequence[bytes], media_type: str, request_id: str, *, abort: bool
) -> Response:
    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece
            await asyncio.sleep(0)  # let each piece go out on its own, as a real stream would
        if abort:
            raise AbortConnection

    return StreamingResponse(
        body(), media_type=media_type, headers={"x-amzn-RequestId": request_id}
    )


async def _hang(receive: Receive, closing: asyncio.Event) -> None:
    """Wait until the client goes away or the fake stops."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    waiters = {asyncio.ensure_future(disconnected()), asyncio.ensure_future(closing.wait())}
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _read_body(receive: Receive) -> bytes | None:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _replaying(raw: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body over once, then waits for disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replay


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
