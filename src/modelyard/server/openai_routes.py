"""Routes of the OpenAI dialect: thin — decode, call a service, encode, render errors."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from modelyard.core.errors import InternalError, ModelyardError
from modelyard.protocols.headers import error_headers
from modelyard.protocols.openai import encode, errors
from modelyard.protocols.openai.decode import decode_chat, decode_embeddings
from modelyard.providers.base import CallContext
from modelyard.server.http import json_response, read_json, request_id
from modelyard.server.state import AppState
from modelyard.services.chat import ChatStream, Served
from modelyard.tenancy.static_keys import Principal, bearer_token

log = logging.getLogger("modelyard.server")
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.modelyard
    return state


def error_response(err: ModelyardError, rid: str) -> Response:
    headers = {"x-request-id": rid, **error_headers(err)}
    return json_response(errors.error_body(err), err.status, headers)


def served_headers(served: Served, rid: str) -> dict[str, str]:
    return {
        "x-request-id": rid,
        "x-modelyard-deployment": served.deployment,
        "x-modelyard-provider": served.provider,
        "x-modelyard-model": served.model,
        "x-modelyard-attempts": str(served.attempts),
    }


def _authenticate(state: AppState, request: Request) -> Principal:
    headers = request.headers
    return state.auth.authenticate(
        bearer_token(headers.get("authorization"), headers.get("x-api-key"))
    )


async def chat_completions(request: Request) -> Response:
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
        chat_request = decode_chat(await read_json(request, state.max_body_bytes))
        model = chat_request.model
        ctx = CallContext(rid, principal.key_id)
        if chat_request.stream:
            opened = await state.chat.stream(chat_request, ctx, request.headers.get)
            streaming = True
            body = _sse(state, opened, chat_request.model, chat_request.include_usage, rid, started)
            headers = {**served_headers(opened.served, rid), **SSE_HEADERS}
            return StreamingResponse(body, media_type="text/event-stream", headers=headers)
        result, served = await state.chat.complete(chat_request, ctx, request.headers.get)
        payload = encode.completion_json(result, _completion_id(), int(time.time()), model)
        return json_response(payload, headers=served_headers(served, rid))
    except ModelyardError as err:
        status = err.status
        return error_response(err, rid)
    finally:
        if not streaming:
            state.in_flight.leave()
            state.log_access(rid, request.url.path, status, started, model)


async def _sse(
    state: AppState, opened: ChatStream, model: str, include_usage: bool, rid: str, started: float
) -> AsyncIterator[bytes]:
    encoder = encode.ChunkEncoder(_completion_id(), int(time.time()), model, include_usage)
    status = 200
    try:
        async for event in opened.events:
            frame = encoder.encode(event)
            if frame is not None:
                yield frame
        yield encoder.close()
    except ModelyardError as err:
        status = err.status
        yield errors.stream_error_frame(err)
    except Exception:  # an after-first-byte bug must still end the stream with an error, not a hang
        log.exception("request %s: stream failed", rid)
        status = 500
        yield errors.stream_error_frame(InternalError("internal error while streaming"))
    finally:
        await opened.events.aclose()
        state.in_flight.leave()
        state.log_access(rid, "/v1/chat/completions", status, started, model)


async def embeddings(request: Request) -> Response:
    state = _state(request)
    rid = request_id(request)
    started = time.perf_counter()
    status, model = 200, None
    try:
        principal = _authenticate(state, request)
        body = await read_json(request, state.max_body_bytes)
        emb_request = decode_embeddings(body)
        model = emb_request.model
        result, served = await state.embeddings.embed(
            emb_request, CallContext(rid, principal.key_id)
        )
        as_b64 = isinstance(body, dict) and body.get("encoding_format") == "base64"
        payload = encode.embeddings_json(result, model, as_b64)
        return json_response(payload, headers=served_headers(served, rid))
    except ModelyardError as err:
        status = err.status
        return error_response(err, rid)
    finally:
        state.log_access(rid, request.url.path, status, started, model)


async def list_models(request: Request) -> Response:
    state = _state(request)
    rid = request_id(request)
    try:
        _authenticate(state, request)
    except ModelyardError as err:
        return error_response(err, rid)
    data = [encode.model_json(e.id, e.created) for e in state.models.list()]
    return json_response(encode.list_json(data), headers={"x-request-id": rid})


async def get_model(request: Request) -> Response:
    state = _state(request)
    rid = request_id(request)
    try:
        _authenticate(state, request)
        entry = state.models.get(request.path_params["model"])
    except ModelyardError as err:
        return error_response(err, rid)
    return json_response(
        encode.dumps(encode.model_json(entry.id, entry.created)), headers={"x-request-id": rid}
    )


def _completion_id() -> str:
    return "chatcmpl-" + os.urandom(12).hex()


ROUTES = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
]
