"""Encode core results and stream events as OpenAI Chat Completions JSON and SSE frames."""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

import orjson

from modelyard.core.chat import ChatResult, Choice, ImagePart, Message, Native, TextPart, Usage
from modelyard.core.embeddings import EmbeddingResult
from modelyard.core.events import (
    Finished,
    NativeDelta,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)

DONE_FRAME = b"data: [DONE]\n\n"
# The dialect this module writes: an answer's unmodelled fields (``core.chat.Native``) from an
# upstream of the same dialect are written back as they came; any other's are left out.
DIALECT = "openai"
# Fields that describe the answer's text as the upstream wrote it (its tokens, offsets in it).
_OF_TEXT = ("logprobs", "annotations")


def usage_json(usage: Usage, native: Native | None = None) -> dict[str, Any]:
    if native is not None and native.origin == DIALECT:
        return _native_usage(usage, native.fields)
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _native_usage(usage: Usage, raw: Any) -> dict[str, Any]:
    """The upstream's usage (its audio and prediction token details...), with the counts the
    core models written over it."""
    try:
        return {
            **raw,
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {
                **(raw.get("prompt_tokens_details") or {}),
                "cached_tokens": usage.cached_input_tokens,
            },
            "completion_tokens_details": {
                **(raw.get("completion_tokens_details") or {}),
                "reasoning_tokens": usage.reasoning_tokens,
            },
        }
    except (TypeError, AttributeError):  # not this dialect's shapes after all: ours alone
        return usage_json(usage)


def _merge(
    out: dict[str, Any], native: Native, text: str | None, refusal: str | None = None
) -> None:
    """``native``'s fields into ``out`` (its ``message``/``delta`` into theirs), when they came
    from this dialect. What describes a text or refusal that is no longer the one sent
    (``text``, ``refusal``: an output guardrail redacted it) is left out: it would not fit,
    and could tell what was cut."""
    if native.origin != DIALECT:
        return
    stale = (native.text is not None and native.text != text) or (
        native.refusal is not None and native.refusal != refusal
    )
    for key, value in native.fields.items():
        if stale and key in _OF_TEXT:
            continue
        inner = out.get(key)
        if isinstance(inner, dict) and isinstance(value, dict):
            inner.update({k: v for k, v in value.items() if k not in _OF_TEXT} if stale else value)
        else:
            out[key] = value


def message_json(message: Message) -> dict[str, Any]:
    text = message.text()
    out: dict[str, Any] = {
        "role": message.role,
        "content": text if message.content else None,
        "refusal": message.refusal,
    }
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
            if c.native is None
            else _choice_json(c)
            for c in result.choices
        ],
    }
    native = result.native
    if native is not None and native.origin == DIALECT:
        # The upstream's answer as it came (its ``service_tier``, the ``system_fingerprint``
        # it was parsed from...), ours written over it.
        body = {**native.fields, **body}
        if result.usage is not None:
            body["usage"] = _native_usage(result.usage, native.fields.get("usage"))
        return orjson.dumps(body)
    if result.usage is not None:
        body["usage"] = usage_json(result.usage)
    if result.system_fingerprint is not None:
        body["system_fingerprint"] = result.system_fingerprint
    return orjson.dumps(body)


def _choice_json(c: Choice) -> dict[str, Any]:
    out = {
        "index": c.index,
        "message": message_json(c.message),
        "logprobs": None,
        "finish_reason": c.finish_reason,
    }
    if c.native is not None:
        _merge(out, c.native, c.message.text(), c.message.refusal)
    return out


class ChunkEncoder:
    """Turns core stream events into ``chat.completion.chunk`` SSE frames for one response."""

    __slots__ = ("_emit", "_include_usage", "_pending", "_prefix", "_started", "_usage")

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
        self._usage: UsageReport | None = None
        # Unmodelled fields waiting for the next chunk of their choice. Until a stream brings
        # some, chunks are written by ``_delta``, which does not look for them.
        self._pending: dict[int, Native] = {}
        self._emit = self._delta

    def _delta(self, index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        if index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", **delta}
            delta.setdefault("content", "")
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._prefix + orjson.dumps((choice,)) + b"}\n\n"

    def _delta_native(self, index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        """``_delta`` with the choice's pending unmodelled fields written in."""
        native = self._pending.pop(index, None)
        if native is None:
            return self._delta(index, delta, finish)
        text = delta.get("content")
        if index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", **delta}
            delta.setdefault("content", "")
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        _merge(choice, native, text, delta.get("refusal"))
        return self._prefix + orjson.dumps((choice,)) + b"}\n\n"

    def _hold(self, event: NativeDelta) -> bytes | None:
        """Keep ``event``'s fields for the next chunk of its choice; fields already waiting
        (a piece that brought nothing else) go out first in a chunk of their own."""
        if event.native.origin != DIALECT:
            return None
        self._emit = self._delta_native
        earlier = self._delta_native(event.index, {}) if event.index in self._pending else None
        self._pending[event.index] = event.native
        return earlier

    def encode(self, event: StreamEvent) -> bytes | None:
        if isinstance(event, TextDelta):
            return self._emit(event.index, {"content": event.text})
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
            return self._emit(event.index, {"tool_calls": [call]})
        if isinstance(event, ReasoningDelta):
            # A signature-only delta has no text for this dialect to carry.
            return (
                self._emit(event.index, {"reasoning_content": event.text}) if event.text else None
            )
        if isinstance(event, Finished):
            return self._emit(event.index, {}, event.reason)
        if isinstance(event, UsageReport):
            # Held back: OpenAI sends the usage chunk last, whatever order the upstream used.
            self._usage = event
        elif isinstance(event, RefusalDelta):
            refusal: dict[str, Any] = {"refusal": event.text}
            if event.index not in self._started:  # a refusal's first chunk has no content
                refusal["content"] = None
            return self._emit(event.index, refusal)
        elif isinstance(event, NativeDelta):
            return self._hold(event)
        return None

    def start(self) -> bytes:
        """Nothing: the first delta carries the role, as OpenAI's first chunk does."""
        return b""

    def close(self) -> bytes:
        """The end of a complete stream: the usage chunk when asked for, then ``[DONE]``."""
        # Fields still waiting (no chunk of their choice followed) go out on their own.
        held = (
            b"".join([self._delta_native(i, {}) for i in list(self._pending)])
            if self._pending
            else b""
        )
        if self._include_usage and self._usage is not None:
            usage = orjson.dumps(usage_json(self._usage.usage, self._usage.native))
            return held + self._prefix + b'[],"usage":' + usage + b"}\n\n" + DONE_FRAME
        return held + DONE_FRAME


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
