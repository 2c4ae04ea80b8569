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
from modelyard.protocols.anthropic.models import VERSION_HEADER as ANTHROPIC_VERSION
from modelyard.protocols.openai import completions, encode, errors
from modelyard.protocols.openai.decode import decode_chat, decode_embeddings
from modelyard.server import anthropic_routes, gemini_routes
from modelyard.server.chat_route import (
    Dialect,
    authenticate,
    chat_endpoint,
    error_response,
    served_raw,
    state_of,
)
from modelyard.server.gemini_routes import wants_gemini
from modelyard.server.http import exchange_of, json_response, read_json, request_id
from modelyard.services.models import ModelEntry
from modelyard.services.pipeline import Caller


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
)


def _completion_result(result: ChatResult, model: str) -> bytes:
    return completions.completion_json(result, _legacy_id(), int(time.time()), model)


def _completion_writer(request: ChatRequest) -> completions.CompletionChunkEncoder:
    return completions.CompletionChunkEncoder(
        _legacy_id(), int(time.time()), request.model, request.include_usage
    )


COMPLETIONS = Dialect(
    path="/v1/completions",
    decode=completions.decode_completion,
    encode_result=_completion_result,
    stream_writer=_completion_writer,
    error_body=DIALECT.error_body,
    error_frame=DIALECT.error_frame,
)


async def embeddings(request: Request) -> Response:
    state = state_of(request)
    exchange = exchange_of(request)
    rid = exchange.rid
    current = state.current
    try:
        principal = await authenticate(state, request)
        body = await read_json(request, current.max_body_bytes)
        emb_request = decode_embeddings(body)
        exchange.model = emb_request.model
        caller = Caller(principal, rid, request.url.path)
        answer = await current.pipeline.embed(caller, emb_request)
        as_b64 = isinstance(body, dict) and body.get("encoding_format") == "base64"
        payload = encode.embeddings_json(answer.result, emb_request.model, as_b64)
        headers = served_raw(DIALECT, answer.served, rid, answer.ticket)
        return json_response(payload, headers=headers)
    except ModelyardError as err:
        return error_response(DIALECT, err, rid)


async def list_models(request: Request) -> Response:
    if wants_gemini(request):
        return await gemini_routes.list_models(request)
    if request.headers.get(ANTHROPIC_VERSION):  # an Anthropic SDK: its own shape
        return await anthropic_routes.list_models(request)
    state = state_of(request)
    rid = request_id(request)
    try:
        await authenticate(state, request)
    except ModelyardError as err:
        return error_response(DIALECT, err, rid)
    data = [_model_json(e) for e in state.current.models.list()]
    return json_response(encode.list_json(data), headers={"x-request-id": rid})


async def get_model(request: Request) -> Response:
    if wants_gemini(request):
        return await gemini_routes.get_model(request)
    if request.headers.get(ANTHROPIC_VERSION):
        return await anthropic_routes.get_model(request)
    state = state_of(request)
    rid = request_id(request)
    try:
        await authenticate(state, request)
        entry = state.current.models.get(request.path_params["model"])
    except ModelyardError as err:
        return error_response(DIALECT, err, rid)
    return json_response(encode.dumps(_model_json(entry)), headers={"x-request-id": rid})


def _model_json(entry: ModelEntry) -> dict[str, Any]:
    """The OpenAI model object, plus the catalog's facts under our own namespaced key."""
    return {**encode.model_json(entry.id, entry.created), "modelyard": entry.facts}


def _completion_id() -> str:
    return "chatcmpl-" + os.urandom(12).hex()


def _legacy_id() -> str:
    return "cmpl-" + os.urandom(12).hex()


ROUTES = [
    Route(DIALECT.path, partial(chat_endpoint, DIALECT), methods=["POST"]),
    Route(COMPLETIONS.path, partial(chat_endpoint, COMPLETIONS), methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
]
