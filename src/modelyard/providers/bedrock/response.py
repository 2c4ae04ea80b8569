"""Parse a Converse response (the non-streamed answer), its stop reason and usage into core.

Claude's answer parts the core does not model (redacted thinking, citations, the stop reasons
it folds) are kept for a Messages API client in that API's shapes: see ``claude``. A plain
answer pays one membership test per block and one per answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
from modelyard.providers.base import token_count
from modelyard.providers.bedrock import claude

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# The model produced output Converse could not parse: no usable answer, and another attempt
# (or another target) may well succeed.
_MALFORMED = frozenset({"malformed_model_output", "malformed_tool_use"})


def finish_reason(stop_reason: object, client_calls: bool, label: str) -> FinishReason:
    """The core finish reason; ``tool_use`` for the JSON-answer tool alone is a plain stop."""
    if stop_reason in _MALFORMED:
        raise UpstreamError(
            f"{label}: the model's output was malformed ({stop_reason})",
            code="upstream_malformed_output",
        )
    reason = _STOP_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    if reason == "tool_calls" and not client_calls:
        return "stop"
    return reason


def parse_usage(raw: object) -> Usage | None:
    """Core usage is inclusive; Converse's ``inputTokens`` excludes cache reads and writes.

    ``cacheDetails`` splits the writes by lifetime (``{"inputTokens", "ttl": "5m" | "1h"}``);
    the one-hour part is billed at its own rate, so it is kept, never more than the writes."""
    if not isinstance(raw, dict):
        return None
    cache_read = _count(raw, "cacheReadInputTokens")
    cache_write = _count(raw, "cacheWriteInputTokens")
    details = raw.get("cacheDetails")
    hour = _one_hour(details) if isinstance(details, list) else 0
    return Usage(
        input_tokens=_count(raw, "inputTokens") + cache_read + cache_write,
        output_tokens=_count(raw, "outputTokens"),
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=min(hour, cache_write),
    )


def _one_hour(details: list[Any]) -> int:
    return sum(
        _count(item, "inputTokens")
        for item in details
        if isinstance(item, dict) and item.get("ttl") == "1h"
    )


def _count(raw: Mapping[str, Any], key: str) -> int:
    return token_count(raw.get(key))


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    json_tool: str | None
    label: str
    model: str
    request_id: str | None = None


def parse_converse(data: dict[str, Any], info: ResponseInfo) -> ChatResult:
    stop = data.get("stopReason")
    try:
        blocks = data["output"]["message"]["content"]
        message, client_calls, whole = _message(blocks, info.json_tool)
        native: Native | None = None
        if whole:
            native = claude.answer_native(blocks, info.json_tool, message)
        if stop in claude.OWN_STOPS:  # a stop reason that is not hashable is malformed
            native = claude.with_stop(native, stop, data, message.text())
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UpstreamError(f"{info.label}: the upstream sent a malformed answer") from exc
    reason = finish_reason(stop, client_calls, info.label)
    return ChatResult(
        choices=[Choice(0, message, reason, native)],
        usage=parse_usage(data.get("usage")),
        upstream_model=info.model,
        upstream_id=info.request_id,
    )


def _message(blocks: list[dict[str, Any]], json_tool: str | None) -> tuple[Message, bool, bool]:
    """The message, whether it calls a client's tool, and whether a block has a part the core
    does not model (a redacted reasoning block, a cited text: see ``claude``)."""
    texts: list[str] = []
    whole = False
    thoughts: list[str] = []
    signature: str | None = None
    calls: list[ToolCall] = []
    for block in blocks:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = orjson.dumps(use.get("input") or {}).decode()
            if use["name"] == json_tool:
                texts.append(arguments)
            else:
                calls.append(ToolCall(use["toolUseId"], use["name"], arguments))
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"].get("reasoningText") or {}
            thoughts.append(reasoning.get("text") or "")
            signature = reasoning.get("signature") or signature
            whole = whole or "redactedContent" in block["reasoningContent"]
        elif "citationsContent" in block:
            texts.append(claude.cited_text(block))
            whole = True
        # Other blocks (an image...) have no core counterpart in an answer.
    message = Message(
        role="assistant",
        content=(TextPart("".join(texts)),) if texts else (),
        tool_calls=tuple(calls),
        reasoning="".join(thoughts) if thoughts else None,
        reasoning_signature=signature,
    )
    return message, bool(calls), whole
