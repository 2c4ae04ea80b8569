"""``POST /v1/messages`` with the MCP connector: the gateway runs the tools, on any deployment.

The connector's servers (``protocols.anthropic.mcp``) resolve under the same policy as the
Responses API's MCP tools (a server the operator configured, by name and URL; other URLs only
when ``mcp.allow_request_urls`` is on), and the same tool loop (``services/tool_loop.py``) runs
them: one metered model call per round and one ledger row per tool execution, children of the
message id. The answer's content is the connector's blocks in order: ``mcp_tool_use`` and
``mcp_tool_result`` for each call, the model's text and its calls of the client's own tools.
A loop that reaches ``mcp.max_iterations`` stops with ``stop_reason: pause_turn``. With
``stream: true`` the same answer is sent as the API's event stream once the loop is done (the
loop's model calls are whole answers).
"""

from __future__ import annotations

import os
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelyard.core.chat import ChatResult
from modelyard.protocols.anthropic.decode import decode_messages
from modelyard.protocols.anthropic.encode import content_json, stop_reason, usage_json
from modelyard.protocols.anthropic.mcp import connector_blocks, connector_stream, split_connector
from modelyard.server.chat_route import SSE_HEADERS, served_headers, state_of
from modelyard.server.http import exchange_of, json_response
from modelyard.services.mcp_servers import resolve_servers
from modelyard.services.pipeline import Caller
from modelyard.services.tool_loop import LoopOutcome, ToolLoop

JSON = dict[str, Any]
PATH = "/v1/messages"


async def connector(request: Request, principal: Any, body: Any) -> Response | None:
    """The answer of a request that uses the MCP connector; None for any other request.
    (``principal``: the caller's, as ``chat_route`` authenticated it.)"""
    split = split_connector(body) if isinstance(body, dict) else None
    if split is None:
        return None
    plain, tools = split
    chat = decode_messages(plain)
    exchange = exchange_of(request)
    exchange.model = chat.model
    streamed = chat.stream
    current = state_of(request).current
    settings = current.settings
    servers = resolve_servers(settings.mcp_servers, settings.mcp, principal.project_id, tools)
    message_id = "msg_" + os.urandom(12).hex()
    rid = exchange.rid
    first = Caller(principal, rid, PATH, message_id, request.headers.get)

    def caller_for(n: int) -> Caller:
        return first if n == 0 else Caller(principal, f"{rid}.{n}", PATH, message_id, first.headers)

    def render(result: ChatResult, ours: frozenset[str]) -> list[JSON]:
        message = result.choices[0].message
        theirs = tuple(c for c in message.tool_calls if c.name not in ours)
        shown = type(message)(
            "assistant",
            message.content,
            tool_calls=theirs,
            reasoning=message.reasoning,
            reasoning_signature=message.reasoning_signature,
        )
        blocks = content_json(shown)
        return [{"type": "blocks", "id": "", "blocks": blocks, "calls": bool(theirs)}]

    loop = ToolLoop(
        current.pipeline,
        caller_for,
        servers,
        render,
        max_iterations=settings.mcp.max_iterations,
        max_output_bytes=settings.mcp.max_output_bytes,
    )
    outcome = await loop.run(chat, [], [])
    body_out = _message(outcome, message_id, chat.model)
    answer = outcome.answer
    headers = {"x-request-id": rid, "request-id": rid}
    if answer is not None:
        headers = {**served_headers(_IDS, answer.served, rid, answer.ticket), **headers}
    if streamed:  # the loop's answers are whole: its stream is written once it is done
        stream_headers = {**headers, **SSE_HEADERS}
        return Response(connector_stream(body_out), headers=stream_headers,
                        media_type="text/event-stream")  # fmt: skip
    return json_response(orjson.dumps(body_out), headers=headers)


def _message(outcome: LoopOutcome, message_id: str, model: str) -> JSON:
    content: list[JSON] = []
    client_calls = False
    for item in outcome.output:
        if item["type"] == "mcp_call":
            content += connector_blocks(item)
        elif item["type"] == "blocks":
            content += item["blocks"]
            client_calls = client_calls or item["calls"]
    reason = outcome.answer.result.choices[0].finish_reason if outcome.answer else None
    if outcome.status == "incomplete" and outcome.incomplete == {"reason": "max_tool_calls"}:
        stop = "pause_turn"
    else:
        stop = stop_reason(reason if not client_calls else "tool_calls", client_calls)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage_json(outcome.usage),
    }


class _Ids:
    """``served_headers`` needs only the dialect's id headers."""

    @staticmethod
    def raw_ids(rid: bytes) -> list[tuple[bytes, bytes]]:
        return [(b"x-request-id", rid), (b"request-id", rid)]


_IDS: Any = _Ids()
