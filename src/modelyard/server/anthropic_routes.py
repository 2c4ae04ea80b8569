"""Routes of the Messages dialect: thin — decode, call a service, encode, render errors.

The same steps as the Chat Completions routes, on the same services; only the decoding, the
encoding and the error shape are this dialect's. Besides ``x-request-id``, responses carry
``request-id``, the header the official SDKs expose as a response's and an error's request id.
"""

from __future__ import annotations

import os
from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.errors import ModelyardError
from modelyard.protocols.anthropic import encode, errors
from modelyard.protocols.anthropic.count import estimate_input_tokens
from modelyard.protocols.anthropic.decode import decode_count_tokens, decode_messages
from modelyard.protocols.anthropic.stream import StreamEncoder
from modelyard.server.anthropic_mcp import connector
from modelyard.server.chat_route import (
    Dialect,
    authenticate,
    chat_endpoint,
    error_response,
    state_of,
)
from modelyard.server.http import exchange_of, json_response, read_json

MESSAGES_PATH = "/v1/messages"


def _ids(rid: str) -> dict[str, str]:
    return {"x-request-id": rid, "request-id": rid}


def _result(result: ChatResult, model: str) -> bytes:
    return encode.message_json(result, _message_id(), model)


def _writer(request: ChatRequest) -> StreamEncoder:
    return StreamEncoder(_message_id(), request.model)


DIALECT = Dialect(
    path=MESSAGES_PATH,
    decode=decode_messages,
    encode_result=_result,
    stream_writer=_writer,
    error_body=errors.error_body,
    error_frame=errors.stream_error_frame,
    id_headers=_ids,
    divert=connector,  # the MCP connector: the gateway runs the tools (server/anthropic_mcp.py)
)


async def count_tokens(request: Request) -> Response:
    """An estimate of the request's input tokens; see ``protocols.anthropic.count``."""
    state = state_of(request)
    exchange = exchange_of(request)
    try:
        await authenticate(state, request)
        body = await read_json(request, state.current.max_body_bytes)
        count_request = decode_count_tokens(body)
        exchange.model = count_request.model
        state.current.models.get(count_request.model)  # unknown: a 404 as on /v1/messages
        payload = encode.count_json(estimate_input_tokens(count_request))
        return json_response(payload, headers=_ids(exchange.rid))
    except ModelyardError as err:
        return error_response(DIALECT, err, exchange.rid)


def _message_id() -> str:
    return "msg_" + os.urandom(12).hex()


ROUTES = [
    Route(MESSAGES_PATH, partial(chat_endpoint, DIALECT), methods=["POST"]),
    Route(MESSAGES_PATH + "/count_tokens", count_tokens, methods=["POST"]),
]
