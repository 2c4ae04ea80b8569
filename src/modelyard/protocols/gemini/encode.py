"""Encode core results as Gemini ``GenerateContentResponse`` JSON, and the other answers.

* Parts of a candidate, in order: reasoning as a ``{"text", "thought": true}`` part (a thought
  summary), the text, then each tool call as a ``functionCall`` with its ``id`` (clients send it
  back on the ``functionResponse``) and its arguments parsed into ``args``. Arguments that are
  not a JSON object (a model's malformed output) are sent as ``{"_raw": "<text>"}`` rather than
  failing the answer.
* ``finishReason``: stop and tool calls → ``STOP`` (Gemini's own reason for both), length →
  ``MAX_TOKENS``, content filter → ``SAFETY``.
* A refusal (``Message.refusal``): Gemini has no field for one and no finish reason that
  means "the model declined" (``SAFETY`` and the others say a filter stopped the candidate,
  whose content is then empty); a Gemini model that declines says so in its text, with
  ``STOP``. So the refusal is a text part after the text, and the finish reason is the
  upstream's as mapped above (an OpenAI refusal's ``stop``: ``STOP``).
* ``usageMetadata``: core counts are inclusive; Gemini counts thoughts apart, so
  ``candidatesTokenCount`` = output - reasoning and ``thoughtsTokenCount`` = reasoning;
  ``promptTokenCount`` includes ``cachedContentTokenCount``, as in the core.
* ``modelVersion`` is the model the client asked for (the deployment), as the other dialects
  answer; ``responseId`` is ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import orjson

from modelyard.core.chat import ChatResult, Choice, FinishReason, ToolCall, Usage

RAW_ARGS_KEY = "_raw"
_FINISH: Final[Mapping[str, str]] = MappingProxyType(
    {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
)
GENERATION_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def finish_reason(reason: FinishReason | None) -> str:
    return _FINISH.get(reason or "stop", "STOP")


def usage_json(usage: Usage | None) -> dict[str, int]:
    usage = usage or Usage()
    reasoning = usage.reasoning_tokens
    out = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(0, usage.output_tokens - reasoning),
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if reasoning:
        out["thoughtsTokenCount"] = reasoning
    if usage.cached_input_tokens:
        out["cachedContentTokenCount"] = usage.cached_input_tokens
    return out


def call_part(call: ToolCall) -> dict[str, Any]:
    return {"functionCall": {"id": call.id, "name": call.name, "args": _args(call.arguments)}}


def _args(arguments: str) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {RAW_ARGS_KEY: arguments}
    return value if isinstance(value, dict) else {RAW_ARGS_KEY: arguments}


def candidate_json(choice: Choice) -> dict[str, Any]:
    message = choice.message
    parts: list[dict[str, Any]] = []
    if message.reasoning:
        parts.append({"text": message.reasoning, "thought": True})
    text = message.text()
    if text:
        parts.append({"text": text})
    if message.refusal:
        parts.append({"text": message.refusal})
    parts.extend(call_part(call) for call in message.tool_calls)
    return {
        "content": {"role": "model", "parts": parts},
        "finishReason": finish_reason(choice.finish_reason),
        "index": choice.index,
    }


def response_json(result: ChatResult, model: str, response_id: str) -> bytes:
    """A whole answer as a ``GenerateContentResponse``."""
    return orjson.dumps(
        {
            "candidates": [candidate_json(c) for c in result.choices],
            "usageMetadata": usage_json(result.usage),
            "modelVersion": model,
            "responseId": response_id,
        }
    )


def count_json(total_tokens: int) -> bytes:
    return orjson.dumps({"totalTokens": total_tokens})


def embedding_json(vector: list[float]) -> bytes:
    return orjson.dumps({"embedding": {"values": vector}})


def embeddings_json(vectors: list[list[float]]) -> bytes:
    return orjson.dumps({"embeddings": [{"values": v} for v in vectors]})


def model_json(
    name: str, description: str | None, limits: tuple[int | None, int | None]
) -> dict[str, Any]:
    """A ``Model`` resource for a deployment; token limits when the catalog knows them."""
    out: dict[str, Any] = {
        "name": "models/" + name,
        "baseModelId": name,
        "version": "001",
        "displayName": name,
        "description": description or "",
        "supportedGenerationMethods": [*GENERATION_METHODS, "embedContent"],
    }
    if limits[0] is not None:
        out["inputTokenLimit"] = limits[0]
    if limits[1] is not None:
        out["outputTokenLimit"] = limits[1]
    return out


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def list_json(models: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"models": models})
