"""Routes of the Gemini API dialect, for the google-genai SDKs and Gemini CLI.

``POST {v1beta,v1}/models/{model}:{method}`` for ``generateContent``, ``streamGenerateContent``
(``alt=sse``: SSE; otherwise one JSON array, as Google's endpoint), ``countTokens``,
``embedContent`` and ``batchEmbedContents``; ``GET {v1beta,v1}/models[/{model}]``. ``{model}``
is a deployment name, with or without ``models/``. The key comes in ``x-goog-api-key`` or the
``key`` query parameter (or ``Authorization: Bearer``), and is checked as on every route. The
query string is never logged (the access log writes the path only), and no error echoes it.

``GET /v1/models`` is shared with the OpenAI dialect: a request that carries a Gemini key
(``x-goog-api-key`` or ``key=``) gets Gemini's listing (``wants_gemini``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.errors import ModelyardError, NotFound
from modelyard.protocols.anthropic.count import estimate_input_tokens
from modelyard.protocols.gemini import encode, errors
from modelyard.protocols.gemini.decode import (
    decode_batch_embed,
    decode_count,
    decode_embed,
    decode_generate,
    model_name,
)
from modelyard.protocols.gemini.stream import StreamEncoder, error_frame
from modelyard.server.chat_route import (
    Dialect,
    SSEResponse,
    authenticate,
    chat_endpoint,
    error_response,
    served_raw,
    state_of,
)
from modelyard.server.http import exchange_of, json_response, read_json
from modelyard.services.models import ModelEntry
from modelyard.services.pipeline import Caller

KEY_HEADER = "x-goog-api-key"


def _ids(rid: str) -> dict[str, str]:
    return {"x-request-id": rid}


def gemini_key(request: Request) -> str | None:
    """The key from ``x-goog-api-key``, ``key=`` or, as elsewhere, ``Authorization: Bearer``."""
    return request.headers.get(KEY_HEADER) or request.query_params.get("key") or None


def wants_gemini(request: Request) -> bool:
    """A shared path (``/v1/models``) asked by a Gemini client: it sends its key its own way."""
    return KEY_HEADER in request.headers or "key" in request.query_params


def _decode(request: Request, body: Any) -> ChatRequest:
    """The URL names the model and whether to stream (``models/{model}:{method}``)."""
    name, _, method = request.path_params["target"].rpartition(":")
    return decode_generate(body, model_name(name), stream=method == "streamGenerateContent")


def _result(result: ChatResult, model: str) -> bytes:
    return encode.response_json(result, model, _response_id())


def _response_id() -> str:
    return os.urandom(12).hex()


# The dialect of ``alt=sse`` streams and of every other route; ``_ARRAY``, of a stream sent as
# one JSON array. Both are built once: what differs per request (the model and the method in
# the URL, the response id) is read or made by the calls themselves.
DIALECT = Dialect(
    path="/v1beta/models/{model}:generateContent",
    decode_request=_decode,
    encode_result=_result,
    stream_writer=lambda request: StreamEncoder(request.model, _response_id(), sse=True),
    error_body=errors.error_body,
    error_frame=lambda err, _rid: error_frame(err, sse=True),
    credentials=gemini_key,
)
_ARRAY = replace(
    DIALECT,
    stream_writer=lambda request: StreamEncoder(request.model, _response_id(), sse=False),
    error_frame=lambda err, _rid: error_frame(err, sse=False),
)


async def post_model(request: Request) -> Response:
    """``models/{model}:{method}``: the method after the last colon picks the handler."""
    name, colon, method = request.path_params["target"].rpartition(":")
    if colon and method in ("generateContent", "streamGenerateContent"):
        return await _generate(request, stream=method == "streamGenerateContent")
    model = model_name(name)
    if colon and method == "countTokens":
        return await _count_tokens(request, model)
    if colon and method in ("embedContent", "batchEmbedContents"):
        return await _embed(request, model, batch=method == "batchEmbedContents")
    err = NotFound(
        f"unknown method {method!r}; served: generateContent, streamGenerateContent, "
        "countTokens, embedContent, batchEmbedContents"
    )
    return error_response(DIALECT, err, exchange_of(request).rid)


async def _generate(request: Request, *, stream: bool) -> Response:
    sse = request.query_params.get("alt") == "sse"
    response = await chat_endpoint(DIALECT if sse or not stream else _ARRAY, request)
    if stream and not sse and isinstance(response, SSEResponse):
        # One JSON array, not events: the body says what it is.
        response.raw_headers = [
            (k, b"application/json" if k == b"content-type" else v) for k, v in response.raw_headers
        ]
    return response


async def _count_tokens(request: Request, model: str) -> Response:
    """An estimate (see ``protocols.anthropic.count``: no upstream is asked)."""
    state = state_of(request)
    exchange = exchange_of(request)
    try:
        await authenticate(state, request, gemini_key(request))
        exchange.model = model
        count_request = decode_count(await read_json(request, state.current.max_body_bytes), model)
        state.current.models.get(model)  # unknown: a 404 as on generateContent
        payload = encode.count_json(estimate_input_tokens(count_request))
        return json_response(payload, headers=_ids(exchange.rid))
    except ModelyardError as err:
        return error_response(DIALECT, err, exchange.rid)


async def _embed(request: Request, model: str, *, batch: bool) -> Response:
    state = state_of(request)
    exchange = exchange_of(request)
    current = state.current
    try:
        principal = await authenticate(state, request, gemini_key(request))
        exchange.model = model
        body = await read_json(request, current.max_body_bytes)
        emb_request = decode_batch_embed(body, model) if batch else decode_embed(body, model)
        caller = Caller(principal, exchange.rid, request.url.path)
        answer = await current.pipeline.embed(caller, emb_request)
        vectors = answer.result.vectors
        payload = encode.embeddings_json(vectors) if batch else encode.embedding_json(vectors[0])
        headers = served_raw(DIALECT, answer.served, exchange.rid, answer.ticket)
        return json_response(payload, headers=headers)
    except ModelyardError as err:
        return error_response(DIALECT, err, exchange.rid)


async def list_models(request: Request) -> Response:
    state = state_of(request)
    rid = exchange_of(request).rid
    try:
        await authenticate(state, request, gemini_key(request))
    except ModelyardError as err:
        return error_response(DIALECT, err, rid)
    models = [_model_json(e) for e in state.current.models.list()]
    return json_response(encode.list_json(models), headers=_ids(rid))


async def get_model(request: Request) -> Response:
    state = state_of(request)
    rid = exchange_of(request).rid
    try:
        await authenticate(state, request, gemini_key(request))
        entry = state.current.models.get(model_name(request.path_params["model"]))
    except ModelyardError as err:
        return error_response(DIALECT, err, rid)
    return json_response(encode.dumps(_model_json(entry)), headers=_ids(rid))


def _model_json(entry: ModelEntry) -> dict[str, Any]:
    """The deployment as a Gemini ``Model``; limits from its first target's catalog facts."""
    targets = entry.facts.get("targets") or [{}]
    first = targets[0]
    limits = (first.get("context_window"), first.get("max_output"))
    return encode.model_json(entry.id, entry.deployment.description, limits)


ROUTES = [
    Route("/v1beta/models", list_models, methods=["GET"]),
    Route("/v1beta/models/{model:path}", get_model, methods=["GET"]),
    Route("/v1beta/models/{target:path}", post_model, methods=["POST"]),
    # GET /v1/models[/{model}] is shared with the OpenAI dialect (``wants_gemini``).
    Route("/v1/models/{target:path}", post_model, methods=["POST"]),
]
