"""Routes of the OpenAI dialect: thin — decode, call a service, encode, render errors."""

from __future__ import annotations

import os
import time
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.errors import ModelyardError
from modelyard.protocols.openai import encode, errors
from modelyard.protocols.openai.decode import decode_chat, decode_embeddings
from modelyard.providers.base import CallContext
from modelyard.server.chat_route import (
    Dialect,
    authenticate,
    chat_endpoint,
    error_response,
    served_headers,
    state_of,
)
from modelyard.server.http import json_response, read_json, request_id
from modelyard.services.metering import Call, Ticket, estimate_embedding_usage
from modelyard.services.models import ModelEntry


def _ids(rid: str) -> dict[str, str]:
    return {"x-request-id": rid}


def _result(result: ChatResult, model: str) -> bytes:
    return encode.completion_json(result, _completion_id(), int(time.time()), model)


def _writer(request: ChatRequest) -> encode.ChunkEncoder:
    return encode.ChunkEncoder(
        _completion_id(), int(time.time()), request.model, request.include_usage
    )


DIALECT = Dialect(
    path="/v1/chat/completions",
    decode=decode_chat,
    encode_result=_result,
    stream_writer=_writer,
    error_body=lambda err, _rid: errors.error_body(err),
    error_frame=lambda err, _rid: errors.stream_error_frame(err),
    id_headers=_ids,
)


async def embeddings(request: Request) -> Response:
    state = state_of(request)
    rid = request_id(request)
    started = time.perf_counter()
    status, model = 200, None
    ticket: Ticket | None = None
    try:
        principal = authenticate(state, request)
        body = await read_json(request, state.max_body_bytes)
        emb_request = decode_embeddings(body)
        model = emb_request.model
        principal.may_call(model)
        call = Call(rid, request.url.path, model, estimate_embedding_usage(emb_request))
        ticket = await state.meter.admit(principal, call)
        result, served = await state.embeddings.embed(
            emb_request, CallContext(rid, principal.key_id)
        )
        state.meter.observe_result(ticket, result)
        await state.meter.finish(ticket, served, 200)
        as_b64 = isinstance(body, dict) and body.get("encoding_format") == "base64"
        payload = encode.embeddings_json(result, model, as_b64)
        return json_response(payload, headers=served_headers(DIALECT, served, rid, ticket))
    except ModelyardError as err:
        status = err.status
        if ticket is not None:
            await state.meter.finish(ticket, None, status)
        return error_response(DIALECT, err, rid)
    finally:
        state.log_access(rid, request.url.path, status, started, model)


async def list_models(request: Request) -> Response:
    state = state_of(request)
    rid = request_id(request)
    try:
        authenticate(state, request)
    except ModelyardError as err:
        return error_response(DIALECT, err, rid)
    data = [_model_json(e) for e in state.models.list()]
    return json_response(encode.list_json(data), headers={"x-request-id": rid})


async def get_model(request: Request) -> Response:
    state = state_of(request)
    rid = request_id(request)
    try:
        authenticate(state, request)
        entry = state.models.get(request.path_params["model"])
    except ModelyardError as err:
        return error_response(DIALECT, err, rid)
    return json_response(encode.dumps(_model_json(entry)), headers={"x-request-id": rid})


def _model_json(entry: ModelEntry) -> dict[str, Any]:
    """The OpenAI model object, plus the catalog's facts under our own namespaced key."""
    return {**encode.model_json(entry.id, entry.created), "modelyard": entry.facts}


def _completion_id() -> str:
    return "chatcmpl-" + os.urandom(12).hex()


ROUTES = [
    Route(DIALECT.path, partial(chat_endpoint, DIALECT), methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
]
