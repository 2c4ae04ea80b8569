"""Parse Gemini ``GenerateContentResponse`` bodies into core results.

* Parts: ``text`` → content, ``thought: true`` parts (thought summaries) → reasoning,
  ``functionCall`` → a ``ToolCall`` with a generated ``call_...`` id (carrying the part's thought
  signature, see ``tool_ids``) and its ``args`` serialised as JSON text. Other parts (inline
  images, executable code) have no core counterpart and are skipped.
* Finish reasons: ``STOP`` → ``stop`` (``tool_calls`` when the candidate called functions),
  ``MAX_TOKENS`` → ``length``, the safety family (``SAFETY``, ``RECITATION``, ``BLOCKLIST``,
  ``PROHIBITED_CONTENT``, ``SPII``, ``LANGUAGE``, image variants) → ``content_filter``;
  ``MALFORMED_FUNCTION_CALL``/``UNEXPECTED_TOOL_CALL`` leave nothing usable, so they raise a
  retryable ``UpstreamError``; anything else → ``stop``.
* A blocked prompt (``promptFeedback.blockReason``, no candidates) is one empty choice with
  ``content_filter``: the model answered, with a refusal, which is not an error.
* Usage: Gemini counts thoughts apart from ``candidatesTokenCount`` (its total is prompt +
  candidates + tool-use prompt + thoughts) and includes cached tokens in ``promptTokenCount``.
  Core counts are inclusive, so output = candidates + thoughts, input = prompt + tool-use prompt.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from modelyard.core.chat import ChatResult, Choice, FinishReason, Message, TextPart, ToolCall, Usage
from modelyard.core.errors import UpstreamError
from modelyard.providers.base import token_count
from modelyard.providers.gemini.tool_ids import new_call_id

_FILTERED = frozenset(
    {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE",
        "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
    }
)  # fmt: skip
_BROKEN_CALL = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL"})
_NOT_FINISHED = frozenset({"", "FINISH_REASON_UNSPECIFIED"})

Piece = tuple[str, str] | ToolCall
"""A part of a candidate: ``("text", ...)``, ``("thought", ...)`` or a tool call."""


def finish_reason(raw: object, has_calls: bool, label: str) -> FinishReason | None:
    """The core finish reason for Gemini's ``finishReason``; None while still generating."""
    if not isinstance(raw, str) or raw in _NOT_FINISHED:
        return None
    if raw == "MAX_TOKENS":
        return "length"
    if raw in _FILTERED:
        return "content_filter"
    if raw in _BROKEN_CALL:
        raise UpstreamError(
            f"{label}: the model produced an invalid function call ({raw})",
            code="upstream_bad_tool_call",
        )
    return "tool_calls" if has_calls else "stop"


def parse_usage(raw: object) -> Usage | None:
    if not isinstance(raw, Mapping):
        return None
    thoughts = _count(raw, "thoughtsTokenCount")
    return Usage(
        input_tokens=_count(raw, "promptTokenCount") + _count(raw, "toolUsePromptTokenCount"),
        output_tokens=_count(raw, "candidatesTokenCount") + thoughts,
        cached_input_tokens=_count(raw, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def _count(raw: Mapping[str, Any], key: str) -> int:
    return token_count(raw.get(key))


def prompt_blocked(data: Mapping[str, Any]) -> bool:
    feedback = data.get("promptFeedback")
    return isinstance(feedback, Mapping) and bool(feedback.get("blockReason"))


def pieces(candidate: Mapping[str, Any]) -> Iterator[Piece]:
    """The usable parts of a candidate's content, in order."""
    content = candidate.get("content") or {}
    for part in content.get("parts") or ():
        call = part.get("functionCall")
        if isinstance(call, Mapping):
            yield tool_call(call, part.get("thoughtSignature"))
            continue
        text = part.get("text")
        if isinstance(text, str) and text:
            yield ("thought" if part.get("thought") is True else "text", text)


def tool_call(call: Mapping[str, Any], signature: object) -> ToolCall:
    name = call["name"]
    if not isinstance(name, str):
        raise TypeError("functionCall.name is not a string")
    args = call.get("args") or {}
    return ToolCall(new_call_id(signature), name, orjson.dumps(args).decode())


def parse_response(data: Mapping[str, Any], label: str, single_call: bool = False) -> ChatResult:
    try:
        candidates = data.get("candidates") or []
        choices = [_choice(c, pos, label, single_call) for pos, c in enumerate(candidates)]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UpstreamError(f"{label}: the upstream sent a malformed response") from exc
    if not choices:
        if not prompt_blocked(data):
            raise UpstreamError(f"{label}: the upstream sent no candidates")
        choices = [Choice(0, Message("assistant"), "content_filter")]
    return ChatResult(
        choices=choices,
        usage=parse_usage(data.get("usageMetadata")),
        upstream_model=_text(data.get("modelVersion")),
        upstream_id=_text(data.get("responseId")),
    )


def _choice(raw: Mapping[str, Any], position: int, label: str, single_call: bool) -> Choice:
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    for piece in pieces(raw):
        if isinstance(piece, ToolCall):
            if not (single_call and calls):
                calls.append(piece)
        elif piece[0] == "thought":
            thoughts.append(piece[1])
        else:
            texts.append(piece[1])
    text = "".join(texts)
    message = Message(
        "assistant",
        content=(TextPart(text),) if text else (),
        tool_calls=tuple(calls),
        reasoning="".join(thoughts) if thoughts else None,
    )
    index = raw.get("index", position)
    return Choice(int(index), message, finish_reason(raw.get("finishReason"), bool(calls), label))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
