"""Encode core results and stream events as Messages API JSON and SSE events.

Usage: core counts are inclusive (input includes cached and cache-write tokens); this API counts
them apart, so ``input_tokens`` = core input - cached - cache writes, and the other two go to
``cache_read_input_tokens`` and ``cache_creation_input_tokens``. Output includes reasoning in
both. The writes are split by lifetime in ``cache_creation`` (``ephemeral_1h_input_tokens``
from the core's one-hour writes, the rest ``ephemeral_5m_input_tokens``), as the API does; a
stream sends it in ``message_delta``, the only event that carries the upstream's counts.

Stop reasons: ``stop`` → ``end_turn``, ``length`` → ``max_tokens``, ``tool_calls`` →
``tool_use``, ``content_filter`` → ``refusal``. A refusal another dialect's upstream explained
(``Message.refusal``, OpenAI's) is ``refusal`` too, its explanation a text block: this API has
no field of its own for one. An answer that made tool calls is ``tool_use``
even when the upstream said ``stop`` (some OpenAI-compatible servers do), because clients loop
on that value. The core's ``stop`` does not say whether a stop sequence matched (nor that a
turn paused, ``length`` that the context window rather than ``max_tokens`` ended it): an
Anthropic upstream's answer that stopped so carries its own ``stop_reason``, ``stop_sequence``
and ``stop_details`` (``Native``), written over the derived ones while the finish reason still
says what they say (``_FOLDED``): a stage that changed the finish wins. Otherwise
``stop_sequence`` is null.

An Anthropic upstream's answer holding blocks the core does not model (``redacted_thinking``,
server-tool blocks, text with ``citations``) comes with its whole ``content`` (``Native``): it
is written as the upstream sent it, every block in its place, unless a stage rewrote the text
(an output guardrail's redaction), when the blocks the core models are written instead.

An answer that ran in a container (the code execution tool) comes with the upstream's
``container`` (the answer's ``Native``), written as it came so that the client can reuse it.

Tool-call arguments are sent as the parsed object in ``input``. Arguments that are not a JSON
object (a model's malformed output) are sent as ``{"_raw": "<text>"}`` rather than failing the
whole answer: the client sees exactly what the model wrote and can answer with an error result;
the decoder turns that wrapping back into the original text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from modelyard.core.chat import ChatResult, FinishReason, Message, Native, Usage
from modelyard.protocols.anthropic.content import DIALECT, RAW_INPUT_KEY

_STOP_REASONS: Final[Mapping[str, str]] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
# The stop reason derived from the core's finish reason for each an upstream keeps; one this
# does not know is ``stop`` to the core (``end_turn``).
_FOLDED: Final[Mapping[str, str]] = {
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
    "tool_use": "tool_use",
    "refusal": "refusal",
}
_STOP_FIELDS: Final = ("stop_reason", "stop_sequence", "stop_details")


def usage_json(usage: Usage | None) -> dict[str, Any]:
    usage = usage or Usage()
    cached, written = usage.cached_input_tokens, usage.cache_write_tokens
    hour = usage.cache_write_1h_tokens
    return {
        "input_tokens": max(0, usage.input_tokens - cached - written),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "cache_creation": {
            "ephemeral_5m_input_tokens": max(0, written - hour),
            "ephemeral_1h_input_tokens": hour,
        },
    }


def stop_reason(reason: FinishReason | None, made_tool_calls: bool) -> str:
    if made_tool_calls and reason in (None, "stop", "tool_calls"):
        return "tool_use"
    return _STOP_REASONS.get(reason or "stop", "end_turn")


def own_stop(fields: Mapping[str, Any], derived: str) -> dict[str, Any]:
    """The upstream's own stop fields in ``fields`` (a ``Native``'s), when the stop reason
    ``derived`` from the finish reason still says what theirs says; else none."""
    own = fields.get("stop_reason")
    if not isinstance(own, str) or _FOLDED.get(own, "end_turn") != derived:
        return {}
    return {key: fields[key] for key in _STOP_FIELDS if key in fields}


def tool_input(arguments: str) -> dict[str, Any]:
    """The tool-use ``input`` for a call's argument text (see the module docstring)."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {RAW_INPUT_KEY: arguments}
    return value if isinstance(value, dict) else {RAW_INPUT_KEY: arguments}


def content_json(message: Message) -> list[dict[str, Any]]:
    """The content blocks of an answer: thinking first, then text, then tool uses."""
    blocks: list[dict[str, Any]] = []
    if message.reasoning or message.reasoning_signature:
        blocks.append(
            {
                "type": "thinking",
                "thinking": message.reasoning or "",
                "signature": message.reasoning_signature or "",
            }
        )
    text = message.text()
    if text:
        blocks.append({"type": "text", "text": text})
    if message.refusal:
        blocks.append({"type": "text", "text": message.refusal})
    for call in message.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": tool_input(call.arguments),
            }
        )
    return blocks


def _content(native: Native, message: Message) -> list[Any]:
    """The upstream's own blocks, when it was of this dialect and they still fit the text;
    else the blocks the core models."""
    content = native.fields.get("content")
    if (
        native.origin != DIALECT
        or not isinstance(content, list)
        or native.text != message.text()
        or message.refusal is not None
    ):
        return content_json(message)
    return content


def message_json(result: ChatResult, message_id: str, model: str) -> bytes:
    """A whole answer as a ``message`` object; ``model`` is what the client asked for."""
    native: Native | None = None
    if result.choices:
        choice = result.choices[0]
        message, reason, native = choice.message, choice.finish_reason, choice.native
    else:
        message, reason = Message("assistant"), None
    if message.refusal is not None:
        reason = "content_filter"
    derived = stop_reason(reason, bool(message.tool_calls))
    body = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content_json(message) if native is None else _content(native, message),
        "stop_reason": derived,
        "stop_sequence": None,
        "usage": usage_json(result.usage),
    }
    if native is not None and native.origin == DIALECT and "stop_reason" in native.fields:
        body.update(own_stop(native.fields, derived))
    top = result.native
    if top is not None and top.origin == DIALECT and "container" in top.fields:
        body["container"] = top.fields["container"]
    return orjson.dumps(body)


def count_json(input_tokens: int) -> bytes:
    return orjson.dumps({"input_tokens": input_tokens})
