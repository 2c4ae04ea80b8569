"""Encode core results and stream events as OpenAI Chat Completions JSON and SSE frames."""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

import orjson

from modelyard.core.chat import ChatResult, ImagePart, Message, TextPart, Usage
from modelyard.core.embeddings import EmbeddingResult
from modelyard.core.events import (
    Finished,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)

DONE_FRAME = b"data: [DONE]\n\n"


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def message_json(message: Message) -> dict[str, Any]:
    text = message.text()
    out: dict[str, Any] = {"role": message.role, "content": text if message.content else None}
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "custom", "custom": {"name": c.name, "input": c.arguments}}
            if c.custom
            else {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in message.tool_calls
        ]
    if message.reasoning is not None:
        out["reasoning_content"] = message.reasoning
    out["refusal"] = None
    return out


def completion_json(result: ChatResult, response_id: str, created: int, model: str) -> bytes:
    body: dict[str, Any] = {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": c.index,
                "message": message_json(c.message),
                "logprobs": None,
                "finish_reason": c.finish_reason,
            }
            for c in result.choices
        ],
    }
    if result.usage is not None:
        body["usage"] = usage_json(result.usage)
    if result.system_fingerprint is not None:
        body["system_fingerprint"] = result.system_fingerprint
    return orjson.dumps(body)


class ChunkEncoder:
    """Turns core stream events into ``chat.completion.chunk`` SSE frames for one response."""

    __slots__ = ("_include_usage", "_prefix", "_started", "_usage")

    def __init__(self, response_id: str, created: int, model: str, include_usage: bool) -> None:
        # Every chunk shares these fields; serialising them once saves work per token.
        head = orjson.dumps(
            {
                "id": response_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
            }
        )
        self._prefix = b"data: " + head[:-1] + b',"choices":'
        self._include_usage = include_usage
        self._started: set[int] = set()
        self._usage: Usage | None = None

    def _delta(self, index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        if index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", **delta}
            delta.setdefault("content", "")
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._prefix + orjson.dumps((choice,)) + b"}\n\n"

    def encode(self, event: StreamEvent) -> bytes | None:
        if isinstance(event, TextDelta):
            return self._delta(event.index, {"content": event.text})
        if isinstance(event, ToolCallDelta):
            kind = "custom" if event.custom else "function"
            call: dict[str, Any] = {"index": event.call_index}
            if event.id is not None:
                call["id"] = event.id
                call["type"] = kind
            fn: dict[str, Any] = {"input" if event.custom else "arguments": event.arguments}
            if event.name is not None:
                fn["name"] = event.name
            call[kind] = fn
            return self._delta(event.index, {"tool_calls": [call]})
        if isinstance(event, ReasoningDelta):
            # A signature-only delta has no text for this dialect to carry.
            return (
                self._delta(event.index, {"reasoning_content": event.text}) if event.text else None
            )
        if isinstance(event, Finished):
            return self._delta(event.index, {}, event.reason)
        if isinstance(event, UsageReport):
            # Held back: OpenAI sends the usage chunk last, whatever order the upstream used.
            self._usage = event.usage
        return None

    def start(self) -> bytes:
        """Nothing: the first delta carries the role, as OpenAI's first chunk does."""
        return b""

    def close(self) -> bytes:
        """The end of a complete stream: the usage chunk when asked for, then ``[DONE]``."""
        if self._include_usage and self._usage is not None:
            usage = orjson.dumps(usage_json(self._usage))
            return self._prefix + b'[],"usage":' + usage + b"}\n\n" + DONE_FRAME
        return DONE_FRAME


def embeddings_json(result: EmbeddingResult, model: str, base64_format: bool) -> bytes:
    data = [
        {"object": "embedding", "index": i, "embedding": _b64(v) if base64_format else v}
        for i, v in enumerate(result.vectors)
    ]
    usage = result.usage or Usage()
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens},
    }
    return orjson.dumps(body)


def _b64(vector: Sequence[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def content_json(message: Message) -> str | list[dict[str, Any]] | None:
    """Content as OpenAI expects it: a plain string when it is all text, else an array of parts."""
    if not message.content:
        return None
    if all(isinstance(p, TextPart) for p in message.content):
        return message.text()
    parts: list[dict[str, Any]] = []
    for p in message.content:
        if isinstance(p, ImagePart):
            image: dict[str, Any] = {"url": p.url}
            if p.detail is not None:
                image["detail"] = p.detail
            parts.append({"type": "image_url", "image_url": image})
        elif isinstance(p, TextPart):
            parts.append({"type": "text", "text": p.text})
    return parts


def model_json(model_id: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "modelyard"}


def list_json(data: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"object": "list", "data": data})


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)
