"""Parse a Messages API ``message`` (the non-streamed answer) and its usage into core.

An answer holding blocks the core does not model (``redacted_thinking``, server-tool blocks
such as ``server_tool_use`` and ``web_search_tool_result``, text with ``citations``) keeps its
whole ``content`` as the choice's ``Native`` (``{"content": [...]}``, the JSON-answer tool's
block as the text block it stands for): a Messages client gets every block in its place.

The core's four finish reasons fold several stop reasons into one (``pause_turn`` and
``stop_sequence`` are ``stop``, ``model_context_window_exceeded`` is ``length``); an answer
stopped for any reason but ``end_turn``, ``tool_use`` and ``max_tokens`` also keeps the
upstream's ``stop_reason``, ``stop_sequence`` and ``stop_details`` in its ``Native``, so that a
Messages client learns that the turn paused (and must be sent back), which stop sequence
matched, or why the model refused. The finish reason stays the core's for everything else.

An answer that ran in a container (the code execution tool) keeps the top-level ``container``
(``id``, ``expires_at``) as the answer's ``Native`` (``ChatResult.native``): a Messages client
reuses the container by sending it back in its next request's ``container``, which reaches
the upstream as an ``extra`` field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from modelyard.core.chat import (
    ChatResult,
    Choice,
    FinishReason,
    Message,
    Native,
    TextPart,
    ToolCall,
    Usage,
)
from modelyard.core.errors import UpstreamError
from modelyard.providers.anthropic.messages import ORIGIN
from modelyard.providers.base import token_count

_STOP_REASONS: Final[Mapping[str, FinishReason]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    # The server paused a long-running turn (server tools); the answer so far is whole.
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# The stop reasons the core's finish reason says in full: an answer with any other keeps its own.
PLAIN_STOPS: Final = frozenset({"end_turn", "tool_use", "max_tokens"})
# The fields of a stop, at the top of a message and in a stream's ``message_delta``.
STOP_FIELDS: Final = ("stop_reason", "stop_sequence", "stop_details")


def finish_reason(stop_reason: object, client_calls: bool) -> FinishReason:
    """The core finish reason; ``tool_use`` for the JSON-answer tool alone is a plain stop."""
    reason = _STOP_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    if reason == "tool_calls" and not client_calls:
        return "stop"
    return reason


def own_stop(reason: object) -> bool:
    """Whether an answer that stopped for ``reason`` keeps the upstream's stop fields."""
    return reason not in PLAIN_STOPS and isinstance(reason, str)


def stop_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The stop fields of a message or a ``message_delta``'s delta, as the upstream wrote them."""
    return {key: raw[key] for key in STOP_FIELDS if raw.get(key) is not None}


def parse_usage(raw: object) -> Usage | None:
    """Core usage is inclusive: the API's ``input_tokens`` excludes cache reads and writes.

    ``cache_creation`` splits the writes by lifetime; its one-hour part is billed at its own
    rate, so it is kept (``Usage.cache_write_1h_tokens``), never more than the writes."""
    if not isinstance(raw, dict):
        return None
    fresh = _count(raw, "input_tokens")
    cache_read = _count(raw, "cache_read_input_tokens")
    cache_write = _count(raw, "cache_creation_input_tokens")
    details = raw.get("output_tokens_details")
    thinking = _count(details, "thinking_tokens") if isinstance(details, dict) else 0
    by_ttl = raw.get("cache_creation")
    hour = _count(by_ttl, "ephemeral_1h_input_tokens") if isinstance(by_ttl, dict) else 0
    return Usage(
        input_tokens=fresh + cache_read + cache_write,
        output_tokens=_count(raw, "output_tokens"),
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=thinking,
        cache_write_1h_tokens=min(hour, cache_write),
    )


def _count(raw: Mapping[str, Any], key: str) -> int:
    return token_count(raw.get(key))


def parse_message(data: dict[str, Any], json_tool: str | None, label: str) -> ChatResult:
    reason: object = data.get("stop_reason")
    try:
        message, client_calls, whole = _message(data["content"], json_tool)
        native = _native(data["content"], json_tool, message) if whole else None
        # own_stop, inlined; a stop reason that is not hashable is malformed (TypeError)
        if reason not in PLAIN_STOPS and isinstance(reason, str):
            native = _with_stop(native, data, message)
    except (KeyError, TypeError, ValueError) as exc:
        raise UpstreamError(f"{label}: the upstream sent a malformed message") from exc
    choice = Choice(0, message, finish_reason(reason, client_calls), native)
    container = data.get("container")
    return ChatResult(
        choices=[choice],
        usage=parse_usage(data.get("usage")),
        upstream_model=data.get("model"),
        upstream_id=data.get("id"),
        native=None if container is None else Native(ORIGIN, {"container": container}),
    )


def _message(blocks: list[dict[str, Any]], json_tool: str | None) -> tuple[Message, bool, bool]:
    """The message, whether it calls a client's tool, and whether a block has no core
    counterpart (the answer is then kept whole, see the module's docstring)."""
    texts: list[str] = []
    thoughts: list[str] = []
    signature: str | None = None
    calls: list[ToolCall] = []
    whole = False
    for block in blocks:
        kind = block["type"]
        if kind == "text":
            texts.append(block["text"])
            if block.get("citations"):
                whole = True
        elif kind == "thinking":
            thoughts.append(block["thinking"])
            signature = block.get("signature") or signature
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            if block["name"] == json_tool:
                texts.append(arguments)
            else:
                calls.append(ToolCall(block["id"], block["name"], arguments))
        else:  # redacted_thinking, a server tool's call or result
            whole = True
    message = Message(
        role="assistant",
        content=(TextPart("".join(texts)),) if texts else (),
        tool_calls=tuple(calls),
        reasoning="".join(thoughts) if thoughts else None,
        reasoning_signature=signature,
    )
    return message, bool(calls), whole


def _native(blocks: list[dict[str, Any]], json_tool: str | None, message: Message) -> Native:
    if json_tool is not None:
        blocks = [_json_text(b) if _is_json_tool(b, json_tool) else b for b in blocks]
    return Native(ORIGIN, {"content": blocks}, text=message.text())


def _with_stop(native: Native | None, data: Mapping[str, Any], message: Message) -> Native:
    """``native`` (or a new one) with the answer's stop fields."""
    if native is None:
        return Native(ORIGIN, stop_fields(data), text=message.text())
    return Native(ORIGIN, {**native.fields, **stop_fields(data)}, text=native.text)


def _is_json_tool(block: dict[str, Any], json_tool: str) -> bool:
    return bool(block["type"] == "tool_use" and block["name"] == json_tool)


def _json_text(block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "text", "text": orjson.dumps(block.get("input") or {}).decode()}
