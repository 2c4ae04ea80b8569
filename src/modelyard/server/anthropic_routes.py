"""Routes of the Messages dialect: thin — decode, call a service, encode, render errors.

The same steps as the Chat Completions routes, on the same services; only the decoding, the
encoding and the error shape are this dialect's. Besides ``x-request-id``, responses carry
``request-id``, the header the official SDKs expose as a response's and an error's request id.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from modelyard.core.errors import InternalError, ModelyardError
from modelyard.protocols.anthropic import encode, errors
from modelyard.protocols.anthropic.count import estimate_input_tokens
from modelyard.protocols.anthropic.decode import decode_count_tokens, decode_messages
from modelyard.protocols.anthropic.stream import StreamEncoder
from modelyard.protocols.headers import error_headers
from modelyard.providers.base import CallContext
from modelyard.server.http import json_response, read_json, request_id
from modelyard.server.openai_routes import SSE_HEADERS, served_headers
from modelyard.server.state import AppState
from modelyard.services.chat import ChatStream, Served
from modelyard.tenancy.static_keys import Principal, bearer_token

log = logging.getLogger("modelyard.server")
MESSAGES_PATH = "/v1/messages"


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.modelyard
    return state


def _ids(rid: str) -> dict[str, str]:
    return {"x-request-id": rid, "request-id": rid}


def error_response(err: ModelyardError, rid: str) -> Response:
    headers = {**_ids(rid), **error_headers(err)}
    return json_response(errors.error_body(err, rid), err.status, headers)


def _served(served: Served, rid: str) -> dict[str, str]:
    return {**served_headers(served, rid), **_ids(rid)}


def _authenticate(state: AppState, request: Request) -> Principal:
    headers = request.headers
    return state.auth.authenticate(
        bearer_token(headers.get("authorization"), headers.get("x-api-key"))
    )


async def messages(request: Request) -> Response:
    state = _state(request)
    rid = request_id(request)
    started = time.perf_counter()
    model: str | None = None
    streaming = False
    status = 200
    try:
        state.in_flight.enter()
    except ModelyardError as err:
        state.log_access(rid, request.url.path, err.status, started, None)
        return error_response(err, rid)
    try:
        principal = _authenticate(state, request)
        chat_request = decode_messages(await read_json(request, state.max_body_bytes))
        model = chat_request.model
        ctx = CallContext(rid, principal.key_id)
        if chat_request.stream:
            opened = await state.chat.stream(chat_request, ctx)
            streaming = True
            body = _sse(state, opened, model, rid, started)
            headers = {**_served(opened.served, rid), **SSE_HEADERS}
            return StreamingResponse(body, media_type="text/event-stream", headers=headers)
        result, served = await state.chat.complete(chat_request, ctx)
        payload = encode.message_json(result, _message_id(), model)
        return json_response(payload, headers=_served(served, rid))
    except ModelyardError as err:
        status = err.status
        return error_response(err, rid)
    finally:
        if not streaming:
            state.in_flight.leave()
            state.log_access(rid, request.url.path, status, started, model)


async def _sse(
    state: AppState, opened: ChatStream, model: str, rid: str, started: float
) -> AsyncIterator[bytes]:
    encoder = StreamEncoder(_message_id(), model)
    status = 200
    try:
        yield encoder.start()
        async for event in opened.events:
            frames = encoder.encode(event)
            if frames:
                yield frames
        yield encoder.finish()
    except ModelyardError as err:
        status = err.status
        yield errors.stream_error_frame(err, rid)
    except Exception:  # an after-first-byte bug must still end the stream with an error, not a hang
        log.exception("request %s: stream failed", rid)
        status = 500
        yield errors.stream_error_frame(InternalError("internal error while streaming"), rid)
    finally:
        await opened.events.aclose()
        state.in_flight.leave()
        state.log_access(rid, MESSAGES_PATH, status, started, model)


async def count_tokens(request: Request) -> Response:
    """An estimate of the request's input tokens; see ``protocols.anthropic.count``."""
    state = _state(request)
    rid = request_id(request)
    started = time.perf_counter()
    status, model = 200, None
    try:
        _authenticate(state, request)
        count_request = decode_count_tokens(await read_json(request, state.max_body_bytes))
        model = count_request.model
        state.models.get(model)  # an unknown deployment is a 404 here as on /v1/messages
        payload = encode.count_json(estimate_input_tokens(count_request))
        return json_response(payload, headers=_ids(rid))
    except ModelyardError as err:
        status = err.status
        return error_response(err, rid)
    finally:
        state.log_access(rid, request.url.path, status, started, model)


def _message_id() -> str:
    return "msg_" + os.urandom(12).hex()


ROUTES = [
    Route(MESSAGES_PATH, messages, methods=["POST"]),
    Route(MESSAGES_PATH + "/count_tokens", count_tokens, methods=["POST"]),
]
