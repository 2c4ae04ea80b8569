"""Converse and ConverseStream for the fake Bedrock: validation, answers, bodies and frames.

Requests are checked the way Bedrock checks them (and answered with its ValidationException
texts): known top-level fields only, a non-empty conversation that starts with a user turn and
alternates roles, no blank text, one member per content block, images in png/jpeg/gif/webp with
base64 bytes, a ``toolConfig`` whenever the turns hold ``toolUse``/``toolResult`` blocks, tool
results that answer calls of the previous assistant turn, and a ``toolChoice`` naming an offered
tool.

Answers, as in the other fakes: after tool results, ``"tool said: <first result's text>"``;
with tools offered, one ``toolUse`` per tool (only the chosen one under ``toolChoice.tool``)
whose input is sampled from its schema; with ``outputConfig.textFormat``, a JSON text sampled
from that schema; otherwise ``"echo: <last user text>"``. With ``thinking`` in
``additionalModelRequestFields`` a signed reasoning block comes first.

Usage: ``inputTokens`` counts the words of every text in the request, ``outputTokens`` the
words of the answer's text plus 8 per tool use; a model id containing ``cache-hit`` also
reports ``cacheReadInputTokens: 1024`` and ``cacheWriteInputTokens: 256``, which (as on
Bedrock) ``inputTokens`` does not include and ``totalTokens`` does, with the writes by lifetime in
``cacheDetails`` (``ttl: "5m"``; ``"1h"`` for a model id containing ``cache-hit-1h``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from .bedrock_frames import event_frame
from .openai_schema import sample_for_schema

TOP_LEVEL = frozenset(
    {
        "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig",
        "additionalModelRequestFields", "promptVariables", "additionalModelResponseFieldPaths",
        "requestMetadata", "performanceConfig", "serviceTier", "outputConfig",
    }
)  # fmt: skip
_BLOCK_KINDS = frozenset(
    {"text", "image", "document", "toolUse", "toolResult", "reasoningContent", "cachePoint"}
)
_INFERENCE = frozenset({"maxTokens", "temperature", "topP", "stopSequences"})
_IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})
CACHE_READ, CACHE_WRITE = 1024, 256
TOOL_USE_TOKENS = 8
THINKING = "Let me think about that."
REDACTED = base64.b64encode(b"\x00encrypted thinking\xff").decode()
CITED = "The grass is green."
GUARDRAIL_TEXT = "Sorry, the model cannot answer this question."


START_WITH_USER = (
    "A conversation must start with a user message. Try again with a conversation that starts "
    "with a user message."
)
ALTERNATE = (
    "A conversation must alternate between user and assistant roles. Make sure the conversation "
    "alternates between user and assistant roles and try again."
)
ADD_BLOCK = "Add a ContentBlock object to the content field and try again."
ADD_TEXT = "Add text to the text field, and try again."


class Invalid(Exception):
    """A request Bedrock would refuse with a ValidationException (the message is its text)."""


@dataclass(slots=True)
class Answer:
    blocks: list[dict[str, Any]]
    stop_reason: str
    usage: dict[str, int]
    fields: dict[str, Any] | None = None  # additionalModelResponseFields


def validate(body: dict[str, Any]) -> None:
    extra = sorted(set(body) - TOP_LEVEL)
    if extra:
        raise Invalid(f"Malformed input request: extraneous key [{extra[0]}] is not permitted")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Invalid(START_WITH_USER)
    _validate_turns(messages)
    for i, block in enumerate(body.get("system") or []):
        if "text" in block and not str(block["text"]).strip():
            raise Invalid(
                f"The text field in the SystemContentBlock object at system.{i} is blank."
            )
    unknown = set(body.get("inferenceConfig") or {}) - _INFERENCE
    if unknown:
        raise Invalid(
            f"Malformed input request: extraneous key [{sorted(unknown)[0]}] is not permitted"
        )
    if "thinking" in (body.get("additionalModelRequestFields") or {}):
        _validate_thinking_turns(messages)
    has_tool_blocks = any(
        "toolUse" in b or "toolResult" in b for m in messages for b in m["content"]
    )
    if has_tool_blocks and "toolConfig" not in body:
        raise Invalid(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    if "toolConfig" in body:
        _validate_tool_config(body["toolConfig"])
    _validate_output_config(body.get("outputConfig"))


def _validate_turns(messages: list[Any]) -> None:
    previous_role: str | None = None
    previous_calls: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise Invalid(f"messages.{i}.role: must be user or assistant")
        if previous_role is None and role != "user":
            raise Invalid(START_WITH_USER)
        if role == previous_role:
            raise Invalid(ALTERNATE)
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise Invalid(
                f"The content field in the Message object at messages.{i} is empty. " + ADD_BLOCK
            )
        calls: set[str] = set()
        for j, block in enumerate(content):
            _validate_block(block, f"messages.{i}.content.{j}", previous_calls)
            if "toolUse" in block:
                calls.add(block["toolUse"]["toolUseId"])
        previous_role, previous_calls = role, calls


def _validate_thinking_turns(messages: list[Any]) -> None:
    for i, message in enumerate(messages):
        content = message.get("content") or []
        if message.get("role") != "assistant" or not any("toolUse" in b for b in content):
            continue
        if "reasoningContent" not in content[0]:
            raise Invalid(
                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
                "found `tool_use`. When `thinking` is enabled, a final `assistant` message must "
                "start with a thinking block."
            )


def _validate_block(block: Any, where: str, previous_calls: set[str]) -> None:
    if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in _BLOCK_KINDS:
        raise Invalid(f"Malformed input request: {where} must hold exactly one known member")
    if "text" in block and not str(block["text"]).strip():
        raise Invalid(f"The text field in the ContentBlock object at {where} is blank. " + ADD_TEXT)
    if "image" in block:
        _validate_image(block["image"], where)
    if "toolResult" in block:
        result = block["toolResult"]
        if result.get("toolUseId") not in previous_calls:
            raise Invalid(
                "The toolUseId in toolResult blocks must match a toolUse in the "
                "previous assistant turn."
            )
        for item in result.get("content", []):
            if "image" in item:
                _validate_image(item["image"], where)
    redacted = block.get("reasoningContent", {}).get("redactedContent")
    if redacted is not None:
        try:
            base64.b64decode(redacted, validate=True)
        except (TypeError, binascii.Error) as exc:
            raise Invalid(f"{where}.reasoningContent.redactedContent: not valid base64") from exc
    if "toolUse" in block and not isinstance(block["toolUse"].get("input"), dict):
        raise Invalid(f"{where}.toolUse.input must be a JSON object")


def _validate_image(image: Any, where: str) -> None:
    if image.get("format") not in _IMAGE_FORMATS:
        raise Invalid(f"{where}.image.format: must be one of png, jpeg, gif, webp")
    try:
        raw = base64.b64decode(image["source"]["bytes"], validate=True)
    except (KeyError, TypeError, binascii.Error) as exc:
        raise Invalid(f"{where}.image.source.bytes: not valid base64") from exc
    if not raw:
        raise Invalid(f"{where}.image.source.bytes: empty image")


def _validate_tool_config(config: Any) -> None:
    tools = config.get("tools")
    if not isinstance(tools, list) or not tools:
        raise Invalid("The toolConfig.tools field must contain at least one tool.")
    names = set()
    for tool in tools:
        spec = tool.get("toolSpec") or {}
        if not isinstance(spec.get("name"), str) or not isinstance(
            spec.get("inputSchema", {}).get("json"), dict
        ):
            raise Invalid(
                "Malformed input request: each tool needs toolSpec.name and "
                "toolSpec.inputSchema.json"
            )
        names.add(spec["name"])
    choice = config.get("toolChoice")
    if choice is None:
        return
    if len(choice) != 1 or next(iter(choice)) not in ("auto", "any", "tool"):
        raise Invalid(
            "Malformed input request: toolChoice must hold exactly one of auto, any, tool"
        )
    if "tool" in choice and choice["tool"].get("name") not in names:
        raise Invalid("The tool named in toolChoice is not one of the tools in toolConfig.")


def _validate_output_config(config: Any) -> None:
    text_format = (config or {}).get("textFormat")
    if text_format is None:
        return
    try:
        orjson.loads(text_format["structure"]["jsonSchema"]["schema"])
    except (KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise Invalid(
            "outputConfig.textFormat.structure.jsonSchema.schema must be a JSON schema string"
        ) from exc
    if text_format.get("type") != "json_schema":
        raise Invalid("outputConfig.textFormat.type must be json_schema")


def build_answer(body: dict[str, Any], model: str, serial: int) -> Answer:
    blocks = _thinking(body) + _reply(body, serial)
    text = " ".join(b["text"] for b in blocks if "text" in b)
    uses = sum(1 for b in blocks if "toolUse" in b)
    usage = {
        "inputTokens": _words_in_request(body),
        "outputTokens": _words(text) + TOOL_USE_TOKENS * uses,
    }
    if "cache-hit" in model:
        usage |= {"cacheReadInputTokens": CACHE_READ, "cacheWriteInputTokens": CACHE_WRITE}
    answer_usage: dict[str, Any] = {**usage, "totalTokens": sum(usage.values())}
    if "cache-hit" in model:
        ttl = "1h" if "cache-hit-1h" in model else "5m"
        answer_usage["cacheDetails"] = [{"inputTokens": CACHE_WRITE, "ttl": ttl}]
    answer = Answer(blocks, "tool_use" if uses else "end_turn", answer_usage)
    return answer if uses else _on_cue(body, answer)


def _thinking(body: dict[str, Any]) -> list[dict[str, Any]]:
    if "thinking" not in (body.get("additionalModelRequestFields") or {}):
        return []
    signed = {
        "reasoningContent": {"reasoningText": {"text": THINKING, "signature": "sig-fake-0001"}}
    }
    first = body["messages"][0]["content"]
    if any("think in secret" in b.get("text", "") for b in first):
        return [{"reasoningContent": {"redactedContent": REDACTED}}, signed]
    return [signed]


def _on_cue(body: dict[str, Any], answer: Answer) -> Answer:
    """Claude's other answer shapes, on the cues of the module docstring."""
    said = " ".join(b.get("text", "") for b in body["messages"][-1]["content"])
    if "cite the source" in said:
        answer.blocks.append({"citationsContent": _citations()})
    elif "fill the context" in said:
        answer.stop_reason = "model_context_window_exceeded"
    elif "please refuse" in said:
        answer.stop_reason = "content_filtered"
    elif "trip the guardrail" in said:
        answer.stop_reason = "guardrail_intervened"
        answer.blocks = [*answer.blocks[:-1], {"text": GUARDRAIL_TEXT}]
    else:
        _cut_at_stop(body, answer)
    return answer


def _citations() -> dict[str, Any]:
    citation = {
        "title": "Grass facts",
        "sourceContent": [{"text": CITED}],
        "location": {"documentChar": {"documentIndex": 0, "start": 0, "end": len(CITED)}},
    }
    return {"content": [{"text": CITED}], "citations": [citation]}


def _cut_at_stop(body: dict[str, Any], answer: Answer) -> None:
    last = answer.blocks[-1]
    stops = (body.get("inferenceConfig") or {}).get("stopSequences") or []
    found = [(last["text"].find(s), s) for s in stops if "text" in last and s in last["text"]]
    if not found:
        return
    at, sequence = min(found)
    answer.blocks[-1] = {"text": last["text"][:at]}
    answer.stop_reason = "stop_sequence"
    if "/stop_sequence" in (body.get("additionalModelResponseFieldPaths") or []):
        answer.fields = {"stop_sequence": sequence}


def _reply(body: dict[str, Any], serial: int) -> list[dict[str, Any]]:
    last = body["messages"][-1]
    results = [b["toolResult"] for b in last["content"] if "toolResult" in b]
    if results:
        said = " ".join(c["text"] for c in results[0].get("content", []) if "text" in c)
        return [{"text": f"tool said: {said}"}]
    config = body.get("toolConfig")
    if config:
        return _tool_uses(config, serial)
    text_format = (body.get("outputConfig") or {}).get("textFormat")
    if text_format:
        schema = orjson.loads(text_format["structure"]["jsonSchema"]["schema"])
        return [{"text": orjson.dumps(sample_for_schema(schema)).decode()}]
    said = " ".join(b["text"] for b in last["content"] if "text" in b)
    return [{"text": f"echo: {said}"}]


def _tool_uses(config: dict[str, Any], serial: int) -> list[dict[str, Any]]:
    specs = [tool["toolSpec"] for tool in config["tools"]]
    chosen = (config.get("toolChoice") or {}).get("tool")
    if chosen:
        specs = [s for s in specs if s["name"] == chosen["name"]]
    return [
        {
            "toolUse": {
                "toolUseId": f"tooluse_{serial:06d}{i:02d}FakeBedrock",
                "name": spec["name"],
                "input": sample_for_schema(spec["inputSchema"]["json"]),
            }
        }
        for i, spec in enumerate(specs)
    ]


def _words(text: str) -> int:
    return len(text.split())


def _words_in_request(body: dict[str, Any]) -> int:
    texts = [b.get("text", "") for b in body.get("system") or []]
    for message in body["messages"]:
        for block in message["content"]:
            texts.append(block.get("text", ""))
            for item in block.get("toolResult", {}).get("content", []):
                texts.append(item.get("text", ""))
    return sum(_words(t) for t in texts)


def converse_body(answer: Answer) -> dict[str, Any]:
    body = {
        "output": {"message": {"role": "assistant", "content": answer.blocks}},
        "stopReason": answer.stop_reason,
        "usage": answer.usage,
        "metrics": {"latencyMs": 42},
    }
    if answer.fields is not None:
        body["additionalModelResponseFields"] = answer.fields
    return body


def stream_frames(answer: Answer) -> list[bytes]:
    """The ConverseStream frames for ``answer``, in Bedrock's order."""
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    for index, block in enumerate(answer.blocks):
        events.extend(_block_events(index, block))
    stop: dict[str, Any] = {"stopReason": answer.stop_reason}
    if answer.fields is not None:
        stop["additionalModelResponseFields"] = answer.fields
    events.append(("messageStop", stop))
    events.append(("metadata", {"usage": answer.usage, "metrics": {"latencyMs": 42}}))
    return [event_frame(kind, payload, serial) for serial, (kind, payload) in enumerate(events)]


def _block_events(index: int, block: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    if "toolUse" in block:
        use = block["toolUse"]
        start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
        yield "contentBlockStart", {"contentBlockIndex": index, "start": start}
        for piece in _thirds(orjson.dumps(use["input"]).decode()):
            yield (
                "contentBlockDelta",
                {"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}},
            )
    elif "redactedContent" in block.get("reasoningContent", {}):
        delta = {
            "reasoningContent": {"redactedContent": block["reasoningContent"]["redactedContent"]}
        }
        yield "contentBlockDelta", {"contentBlockIndex": index, "delta": delta}
    elif "citationsContent" in block:
        cited = block["citationsContent"]
        for piece in _words_with_spaces(cited["content"][0]["text"]):
            yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}
        for citation in cited["citations"]:
            yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"citation": citation}}
    elif "reasoningContent" in block:
        reasoning = block["reasoningContent"]["reasoningText"]
        for piece in _words_with_spaces(reasoning["text"]):
            yield (
                "contentBlockDelta",
                {"contentBlockIndex": index, "delta": {"reasoningContent": {"text": piece}}},
            )
        signature = {"reasoningContent": {"signature": reasoning["signature"]}}
        yield "contentBlockDelta", {"contentBlockIndex": index, "delta": signature}
    else:
        for piece in _words_with_spaces(block["text"]):
            yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}
    yield "contentBlockStop", {"contentBlockIndex": index}


def _thirds(text: str) -> list[str]:
    step = max(1, len(text) // 3 + 1)
    return [text[i : i + step] for i in range(0, len(text), step)]


def _words_with_spaces(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]
