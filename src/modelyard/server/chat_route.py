"""The chat endpoint every served dialect shares: the steps are the same, only the shapes differ.

Request id, in-flight bound, authentication, bounded body, decode, the chat service (with the
request's headers for sticky routing), then a JSON body or an SSE stream; errors before the first
byte become the dialect's error response, after it the dialect's in-stream error frame.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.errors import InternalError, ModelyardError
from modelyard.core.events import StreamEvent
from modelyard.protocols.headers import error_headers
from modelyard.providers.base import CallContext
from modelyard.server.http import json_response, read_json, request_id
from modelyard.server.state import AppState
from modelyard.services.chat import ChatStream, Served
from modelyard.tenancy.static_keys import Principal, bearer_token

log = logging.getLogger("modelyard.server")
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class StreamWriter(Protocol):
    def start(self) -> bytes: ...
    def encode(self, event: StreamEvent) -> bytes | None: ...
    def close(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """What one served API contributes to the shared endpoint."""

    path: str
    decode: Callable[[Any], ChatRequest]
    encode_result: Callable[[ChatResult, str], bytes]  # (result, requested model)
    stream_writer: Callable[[ChatRequest], StreamWriter]
    error_body: Callable[[ModelyardError, str], bytes]  # (error, request id)
    error_frame: Callable[[ModelyardError, str], bytes]
    id_headers: Callable[[str], Mapping[str, str]]


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.modelyard
    return state


def authenticate(state: AppState, request: Request) -> Principal:
    headers = request.headers
    return state.auth.authenticate(
        bearer_token(headers.get("authorization"), headers.get("x-api-key"))
    )


def error_response(dialect: Dialect, err: ModelyardError, rid: str) -> Response:
    headers = {**dialect.id_headers(rid), **error_headers(err)}
    return json_response(dialect.error_body(err, rid), err.status, headers)


def served_headers(dialect: Dialect, served: Served, rid: str) -> dict[str, str]:
    return {
        **dialect.id_headers(rid),
        "x-modelyard-deployment": served.deployment,
        "x-modelyard-provider": served.provider,
        "x-modelyard-model": served.model,
        "x-modelyard-attempts": str(served.attempts),
    }


async def chat_endpoint(dialect: Dialect, request: Request) -> Response:
    state = state_of(request)
    rid = request_id(request)
    started = time.perf_counter()
    model: str | None = None
    streaming = False
    status = 200
    try:
        state.in_flight.enter()
    except ModelyardError as err:
        state.log_access(rid, dialect.path, err.status, started, None)
        return error_response(dialect, err, rid)
    try:
        principal = authenticate(state, request)
        chat_request = dialect.decode(await read_json(request, state.max_body_bytes))
        model = chat_request.model
        ctx = CallContext(rid, principal.key_id)
        if chat_request.stream:
            opened = await state.chat.stream(chat_request, ctx, request.headers.get)
            streaming = True
            body = _sse(dialect, state, opened, chat_request, (rid, started))
            headers = {**served_headers(dialect, opened.served, rid), **SSE_HEADERS}
            return StreamingResponse(body, media_type="text/event-stream", headers=headers)
        result, served = await state.chat.complete(chat_request, ctx, request.headers.get)
        payload = dialect.encode_result(result, model)
        return json_response(payload, headers=served_headers(dialect, served, rid))
    except ModelyardError as err:
        status = err.status
        return error_response(dialect, err, rid)
    finally:
        if not streaming:
            state.in_flight.leave()
            state.log_access(rid, dialect.path, status, started, model)


async def _sse(
    dialect: Dialect,
    state: AppState,
    opened: ChatStream,
    chat_request: ChatRequest,
    timing: tuple[str, float],
) -> AsyncIterator[bytes]:
    rid, started = timing
    writer = dialect.stream_writer(chat_request)
    status = 200
    try:
        opening = writer.start()
        if opening:
            yield opening
        async for event in opened.events:
            frame = writer.encode(event)
            if frame:
                yield frame
        yield writer.close()
    except ModelyardError as err:
        status = err.status
        yield dialect.error_frame(err, rid)
    except Exception:  # an after-first-byte bug must still end the stream with an error, not a hang
        log.exception("request %s: stream failed", rid)
        status = 500
        yield dialect.error_frame(InternalError("internal error while streaming"), rid)
    finally:
        await opened.events.aclose()
        state.in_flight.leave()
        state.log_access(rid, dialect.path, status, started, chat_request.model)
