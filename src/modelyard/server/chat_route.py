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
from modelyard.services.metering import Call, Ticket, estimate_usage
from modelyard.tenancy.keys import Principal, bearer_token

log = logging.getLogger("modelyard.server")
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
CLIENT_GONE = 499  # the client closed the connection before the answer ended


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
    return state.keys.authenticate(
        bearer_token(headers.get("authorization"), headers.get("x-api-key"))
    )


def error_response(dialect: Dialect, err: ModelyardError, rid: str) -> Response:
    headers = {**dialect.id_headers(rid), **error_headers(err)}
    return json_response(dialect.error_body(err, rid), err.status, headers)


def served_headers(
    dialect: Dialect, served: Served, rid: str, ticket: Ticket | None = None
) -> dict[str, str]:
    return {
        **dialect.id_headers(rid),
        **(ticket.headers() if ticket else {}),
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
    ticket: Ticket | None = None
    meter = state.meter
    try:
        principal = authenticate(state, request)
        chat_request = dialect.decode(await read_json(request, state.max_body_bytes))
        model = chat_request.model
        principal.may_call(model)
        call = Call(rid, dialect.path, model, estimate_usage(chat_request), chat_request.stream)
        ticket = await meter.admit(principal, call)
        ctx = CallContext(rid, principal.key_id)
        if chat_request.stream:
            opened = await state.chat.stream(chat_request, ctx, request.headers.get)
            streaming = True
            body = _sse(dialect, state, opened, chat_request, ticket, started)
            headers = {**served_headers(dialect, opened.served, rid, ticket), **SSE_HEADERS}
            return StreamingResponse(body, media_type="text/event-stream", headers=headers)
        result, served = await state.chat.complete(chat_request, ctx, request.headers.get)
        meter.observe_result(ticket, result)
        await meter.finish(ticket, served, 200)
        payload = dialect.encode_result(result, model)
        return json_response(payload, headers=served_headers(dialect, served, rid, ticket))
    except ModelyardError as err:
        status = err.status
        if ticket is not None:
            await meter.finish(ticket, None, status)
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
    ticket: Ticket,
    started: float,
) -> AsyncIterator[bytes]:
    rid = ticket.call.request_id
    writer = dialect.stream_writer(chat_request)
    events = state.meter.observe_stream(ticket, opened.events)
    status = 200
    ended = False
    try:
        opening = writer.start()
        if opening:
            yield opening
        async for event in events:
            frame = writer.encode(event)
            if frame:
                yield frame
        ended = True
        yield writer.close()
    except ModelyardError as err:
        status, ended = err.status, True
        yield dialect.error_frame(err, rid)
    except Exception:  # an after-first-byte bug must still end the stream with an error, not a hang
        log.exception("request %s: stream failed", rid)
        status, ended = 500, True
        yield dialect.error_frame(InternalError("internal error while streaming"), rid)
    finally:
        await events.aclose()
        # A client that left mid-stream is recorded as 499 with what it was sent so far.
        await state.meter.finish(ticket, opened.served, status if ended else CLIENT_GONE)
        state.in_flight.leave()
        state.log_access(rid, dialect.path, status, started, chat_request.model)
