"""Routes of the Messages dialect: thin — decode, call a service, encode, render errors.

The same steps as the Chat Completions routes, on the same services; only the decoding, the
encoding and the error shape are this dialect's. Besides ``x-request-id``, responses carry
``request-id``, the header the official SDKs expose as a response's and an error's request id.
"""

from __future__ import annotations

import os
from functools import partial

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.errors import ModelyardError
from modelyard.protocols.anthropic import encode, errors, models
from modelyard.protocols.anthropic.count import estimate_input_tokens
from modelyard.protocols.anthropic.decode import (
    decode_count_tokens,
    decode_messages,
    read_headers,
)
from modelyard.protocols.anthropic.stream import StreamEncoder
from modelyard.server.anthropic_mcp import connector
from modelyard.server.chat_route import (
    Dialect,
    authenticate,
    chat_endpoint,
    error_response,
    state_of,
)
from modelyard.server.http import RawHeaders, exchange_of, json_response, read_json
from modelyard.services.counting import count_input_tokens

MESSAGES_PATH = "/v1/messages"
COUNT_HEADER = "x-modelyard-token-count"


def _raw_ids(rid: bytes) -> RawHeaders:
    return [(b"x-request-id", rid), (b"request-id", rid)]


def _ids(rid: str) -> dict[str, str]:
    return DIALECT.id_headers(rid)


def _result(result: ChatResult, model: str) -> bytes:
    return encode.message_json(result, _message_id(), model)


def _writer(request: ChatRequest) -> StreamEncoder:
    return StreamEncoder(_message_id(), request.model, estimate_input_tokens(request))


DIALECT = Dialect(
    path=MESSAGES_PATH,
    decode=decode_messages,
    encode_result=_result,
    stream_writer=_writer,
    error_body=errors.error_body,
    error_frame=errors.stream_error_frame,
    raw_ids=_raw_ids,
    read_headers=read_headers,
    divert=connector,  # the MCP connector: the gateway runs the tools (server/anthropic_mcp.py)
)


async def count_tokens(request: Request) -> Response:
    """The request's input tokens: counted by the deployment's first target when it can (an
    Anthropic upstream), else estimated (``protocols.anthropic.count``); the
    ``x-modelyard-token-count`` header says ``exact`` or ``estimate``."""
    state = state_of(request)
    exchange = exchange_of(request)
    try:
        principal = await authenticate(state, request)
        body = await read_json(request, state.current.max_body_bytes)
        count_request = decode_count_tokens(body)
        read_headers(count_request, request.headers.get)
        exchange.model = count_request.model
        counted = await count_input_tokens(
            state.current.gateway, principal, count_request, exchange.rid, estimate_input_tokens
        )
        headers = {**_ids(exchange.rid), COUNT_HEADER: "exact" if counted.exact else "estimate"}
        return json_response(encode.count_json(counted.tokens), headers=headers)
    except ModelyardError as err:
        return error_response(DIALECT, err, exchange.rid)


async def list_models(request: Request) -> Response:
    """The deployments as a Models API page (see ``protocols.anthropic.models``)."""
    state = state_of(request)
    rid = exchange_of(request).rid
    try:
        await authenticate(state, request)
        page = models.page_of(request.query_params)
        data = [models.model_json(e.id, e.created) for e in state.current.models.list()]
        return json_response(models.list_json(data, page), headers=_ids(rid))
    except ModelyardError as err:
        return error_response(DIALECT, err, rid)


async def get_model(request: Request) -> Response:
    state = state_of(request)
    rid = exchange_of(request).rid
    try:
        await authenticate(state, request)
        entry = state.current.models.get(request.path_params["model"])
    except ModelyardError as err:
        return error_response(DIALECT, err, rid)
    return json_response(
        orjson.dumps(models.model_json(entry.id, entry.created)), headers=_ids(rid)
    )


async def root(_request: Request) -> Response:
    """The base URL answers (Claude Code sends ``HEAD /`` on every start to check it)."""
    return json_response(b'{"status":"ok"}')


def _message_id() -> str:
    return "msg_" + os.urandom(12).hex()


ROUTES = [
    Route("/", root, methods=["GET"]),  # HEAD is answered by every GET route
    Route(MESSAGES_PATH, partial(chat_endpoint, DIALECT), methods=["POST"]),
    Route(MESSAGES_PATH + "/count_tokens", count_tokens, methods=["POST"]),
]
