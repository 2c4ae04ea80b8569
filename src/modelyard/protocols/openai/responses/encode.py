"""The ``Response`` object and its output items, from a core result or a finished stream."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from modelyard.core.chat import ChatResult, FinishReason, ToolCall, Usage
from modelyard.core.errors import ContentBlocked, ModelyardError
from modelyard.protocols.openai.responses.request import (
    JSON,
    ResponsesRequest,
    fresh_item_id,
    new_id,
)

_INCOMPLETE: Final[Mapping[str, str]] = {
    "length": "max_output_tokens",
    "content_filter": "content_filter",
}
_ERROR_CODES: Final[Mapping[str, str]] = {
    "rate_limit": "rate_limit_exceeded",
    "invalid_request": "invalid_prompt",
}


@dataclass(slots=True)
class Envelope:
    """What every ``Response`` object of one response shares."""

    request: ResponsesRequest
    id: str = field(default_factory=lambda: new_id("resp"))
    created_at: int = field(default_factory=lambda: int(time.time()))
    warnings: tuple[str, ...] = ()


def usage_json(usage: Usage | None) -> JSON:
    u = usage or Usage()
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {
            "cached_tokens": u.cached_input_tokens,
            "cache_write_tokens": u.cache_write_tokens,
        },
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def status_of(reason: FinishReason | None) -> tuple[str, JSON | None]:
    """(status, incomplete_details) for how the model stopped."""
    why = _INCOMPLETE.get(reason or "")
    return ("incomplete", {"reason": why}) if why else ("completed", None)


def filtered_json(blocked: ContentBlocked) -> JSON:
    """``incomplete_details`` of an answer an output guard blocked: OpenAI's
    ``content_filter`` reason, plus which guard and category (never the content)."""
    return {
        "reason": "content_filter",
        "guardrail": blocked.guard,
        "category": blocked.category,
        "message": blocked.message,
    }


def blocked_json(env: Envelope, blocked: ContentBlocked) -> JSON:
    """The ``Response`` of a whole answer an output guard blocked: ``incomplete``, with no
    output (nothing of the blocked answer reaches the client)."""
    return response_json(env, "incomplete", [], None, incomplete=filtered_json(blocked))


def error_json(err: ModelyardError) -> JSON:
    return {"code": _ERROR_CODES.get(err.kind, "server_error"), "message": err.message}


def response_json(
    env: Envelope,
    status: str,
    output: list[JSON],
    usage: Usage | None,
    *,
    incomplete: JSON | None = None,
    error: JSON | None = None,
) -> JSON:
    req = env.request
    done = status in ("completed", "incomplete", "failed", "cancelled")
    body: JSON = {
        "id": env.id,
        "object": "response",
        "created_at": env.created_at,
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "background": req.background,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "model": req.chat.model,
        "output": output,
        "parallel_tool_calls": req.chat.parallel_tool_calls is not False,
        "previous_response_id": req.previous_response_id,
        "reasoning": req.reasoning,
        "store": req.store,
        "temperature": req.chat.temperature,
        "text": req.text,
        "tool_choice": req.tool_choice,
        "tools": req.tools,
        "top_p": req.chat.top_p,
        "truncation": req.truncation,
        "usage": usage_json(usage) if done else None,
        "metadata": req.metadata,
        "conversation": {"id": req.conversation} if req.conversation else None,
        **req.echo,
    }
    if env.warnings:
        body["modelyard"] = {"warnings": list(env.warnings)}
    return body


def reasoning_item(text: str, signature: str | None, item_id: str | None = None) -> JSON:
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {
        "type": "reasoning",
        "id": item_id or fresh_item_id("rs"),
        "summary": summary,
        "encrypted_content": signature,
    }


def message_item(
    text: str, item_id: str | None = None, status: str = "completed", refusal: str | None = None
) -> JSON:
    """The answer's message; a refusal (``Message.refusal``) is its ``refusal`` part, after
    the text if there is any."""
    content: list[JSON] = []
    if status == "completed":
        if text or refusal is None:
            content.append(text_part(text))
        if refusal is not None:
            content.append(refusal_part(refusal))
    return {
        "type": "message",
        "id": item_id or fresh_item_id("msg"),
        "status": status,
        "role": "assistant",
        "content": content,
    }


def text_part(text: str) -> JSON:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def refusal_part(refusal: str) -> JSON:
    return {"type": "refusal", "refusal": refusal}


def call_item(call: ToolCall, req: ResponsesRequest, item_id: str | None = None) -> JSON:
    namespace, name = req.names.split(call.name)
    item: JSON = {
        "type": "function_call",
        "id": item_id or fresh_item_id("fc"),
        "call_id": call.id,
        "name": name,
        "arguments": call.arguments,
        "status": "completed",
    }
    if namespace:
        item["namespace"] = namespace
    return item


def result_output(
    result: ChatResult, req: ResponsesRequest
) -> tuple[list[JSON], FinishReason | None]:
    """A whole answer's output items: reasoning, then the message, then the calls."""
    if not result.choices:
        return [], None
    choice = result.choices[0]
    message = choice.message
    output: list[JSON] = []
    if message.reasoning or message.reasoning_signature:
        output.append(reasoning_item(message.reasoning or "", message.reasoning_signature))
    text = message.text()
    if text or message.refusal or not message.tool_calls:
        output.append(message_item(text, refusal=message.refusal or None))
    output.extend(call_item(call, req) for call in message.tool_calls)
    return output, choice.finish_reason


def output_text(output: list[JSON]) -> str:
    return "".join(
        part["text"]
        for item in output
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def result_json(env: Envelope, result: ChatResult) -> tuple[JSON, list[JSON]]:
    """The ``Response`` object of a non-streamed answer, and its output items."""
    output, reason = result_output(result, env.request)
    status, incomplete = status_of(reason)
    return response_json(env, status, output, result.usage, incomplete=incomplete), output


def dump(body: Any) -> bytes:
    return orjson.dumps(body)
