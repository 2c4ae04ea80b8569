"""Decode a ``POST /v1/responses`` body (``CreateResponse``) into a ``ResponsesRequest``.

Every field of the spec is either translated, passed on to an OpenAI-compatible upstream in
``extra`` (``prompt_cache_key``, ``safety_identifier``, ``service_tier``...), or refused with a
400 naming it when it asks for something this gateway does not do (stored prompts,
logprobs). A field the spec does not know is a 400 naming it.
"""

from __future__ import annotations

from typing import Any, Final

from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.protocols.openai.responses.items import (
    canonical_items,
    reference_positions,
    to_messages,
)
from modelyard.protocols.openai.responses.mcp import decode_mcp_tools, redacted_tools
from modelyard.protocols.openai.responses.request import JSON, ResponsesRequest
from modelyard.protocols.openai.responses.tools import decode_text, decode_tool_choice, decode_tools
from modelyard.protocols.validate import (
    bad,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_number,
    get_str,
    require_dict,
)

DIALECT: Final = "openai"
# Fields handled below, by name; any other top-level field is refused.
_HANDLED: Final = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text",
        "max_output_tokens", "temperature", "top_p", "metadata", "store",
        "previous_response_id", "conversation", "include", "truncation", "user", "stream",
        "stream_options", "reasoning", "background", "prompt", "top_logprobs",
        "max_tool_calls", "context_management", "moderation", "prompt_cache_options",
        "client_metadata",
    }
)  # fmt: skip
# Passed to an OpenAI-compatible upstream unchanged: Chat Completions has the same field.
_PASSED: Final = ("prompt_cache_key", "prompt_cache_retention", "safety_identifier", "service_tier")
_PASSED_SET: Final = frozenset(_PASSED)
# Accepted values of ``include``: the ones about hosted tools' items can never apply here.
_INCLUDE: Final = frozenset(
    {
        "reasoning.encrypted_content", "message.input_image.image_url",
        "computer_call_output.output.image_url", "file_search_call.results",
        "web_search_call.results", "web_search_call.action.sources",
        "code_interpreter_call.outputs",
    }
)  # fmt: skip
# Fields checked by ``_refuse_unsupported``.
_RARE: Final = frozenset(
    {
        "background", "prompt", "top_logprobs", "context_management", "moderation",
        "prompt_cache_options", "stream_options", "max_tool_calls", "client_metadata",
    }
)  # fmt: skip
METADATA_KEYS: Final = 16
METADATA_KEY_CHARS: Final = 64
METADATA_VALUE_CHARS: Final = 512


def _chain(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The earlier turns a request continues: ``previous_response_id`` or ``conversation``."""
    previous = get_str(body, "previous_response_id", "previous_response_id")
    conversation = _conversation(body.get("conversation"))
    if previous and conversation:
        raise bad("previous_response_id", "cannot be used together with conversation")
    return previous, conversation


def _background(body: dict[str, Any]) -> bool:
    background = bool(get_bool(body, "background", "background"))
    if background and get_bool(body, "store", "store") is False:
        raise bad("background", "a background response is stored: it cannot have store false")
    return background


def decode_response_request(body: Any) -> ResponsesRequest:
    body = require_dict(body, "body")
    unknown = [k for k in body if k not in _HANDLED and k not in _PASSED]
    if unknown:
        raise bad(unknown[0], "unknown parameter of POST /v1/responses")
    if not _RARE.isdisjoint(body):  # most bodies carry none of these: one set test
        _refuse_unsupported(body)
    raw_tools = get_list(body, "tools", "tools")
    specs, hosted, names = decode_tools(raw_tools)
    mcp = decode_mcp_tools(raw_tools) if raw_tools else ()
    response_format, text = decode_text(get_dict(body, "text", "text"))
    instructions = get_str(body, "instructions", "instructions")
    items, references = _input(body)
    reasoning = get_dict(body, "reasoning", "reasoning")
    max_output = get_int(body, "max_output_tokens", "max_output_tokens", minimum=16)
    chat = ChatRequest(
        model=get_str(body, "model", "model", required=True) or "",
        messages=_instructed(instructions) + to_messages(items, names),
        stream=bool(get_bool(body, "stream", "stream")),
        include_usage=True,
        max_tokens=max_output,
        temperature=get_number(body, "temperature", "temperature", minimum=0, maximum=2),
        top_p=get_number(body, "top_p", "top_p", minimum=0, maximum=1),
        tools=specs,
        tool_choice=decode_tool_choice(body.get("tool_choice"), names),
        parallel_tool_calls=get_bool(body, "parallel_tool_calls", "parallel_tool_calls"),
        response_format=response_format,
        user=get_str(body, "user", "user"),
        extra=_extra(body, reasoning, text),
        extra_origin=DIALECT,
    )
    if not chat.messages and not references and not body.get("previous_response_id"):
        raise bad("input", "must contain at least one item")
    background = _background(body)
    previous, conversation = _chain(body)
    return ResponsesRequest(
        chat=chat,
        items=items,
        references=references,
        instructions=instructions,
        tools=redacted_tools(raw_tools or []) if mcp else list(raw_tools or []),
        tool_choice=body.get("tool_choice", "auto"),
        text=text,
        reasoning=reasoning,
        metadata=_metadata(get_dict(body, "metadata", "metadata")),
        store=get_bool(body, "store", "store") is not False,
        background=background,
        previous_response_id=previous,
        conversation=conversation,
        include=_include(get_list(body, "include", "include")),
        truncation=_truncation(body.get("truncation")),
        max_output_tokens=max_output,
        hosted=hosted,
        names=names,
        mcp=mcp,
        max_tool_calls=get_int(body, "max_tool_calls", "max_tool_calls", minimum=1),
        echo={k: body[k] for k in ("user", "max_tool_calls", *_PASSED) if body.get(k) is not None},
    )


def _input(body: JSON) -> tuple[list[JSON], tuple[int, ...]]:
    """The input items, and where ``item_reference`` items stand among them."""
    if "input" not in body and not body.get("previous_response_id"):
        raise bad("input", "is required")
    raw = body.get("input")
    if raw is None:
        return [], ()
    items = canonical_items(raw)
    # A string is one message: only an array can hold references.
    return items, (reference_positions(items) if isinstance(raw, list) else ())


def instruction_messages(instructions: str | None) -> list[Message]:
    return _instructed(instructions)


def _instructed(instructions: str | None) -> list[Message]:
    return [Message("developer", (TextPart(instructions),))] if instructions else []


def _refuse_unsupported(body: JSON) -> None:
    if body.get("prompt") is not None:
        raise bad(
            "prompt", "stored prompt templates are not supported; send input and instructions"
        )
    if body.get("top_logprobs"):
        raise bad("top_logprobs", "log probabilities are not supported on /v1/responses")
    for name in ("context_management", "moderation", "prompt_cache_options"):
        if body.get(name) is not None:
            raise bad(name, "is not supported by this gateway; remove it")
    stream_options = get_dict(body, "stream_options", "stream_options") or {}
    extra = sorted(set(stream_options) - {"include_obfuscation"})
    if extra:
        raise bad(f"stream_options.{extra[0]}", "unknown field; accepted: include_obfuscation")
    # The client's own labels (Codex sends its turn's state): no answer depends on them, so
    # they are checked for shape and not sent upstream. The body limit bounds their size.
    get_dict(body, "client_metadata", "client_metadata")


def _extra(body: JSON, reasoning: JSON | None, text: JSON) -> dict[str, Any]:
    if reasoning is None and len(text) == 1 and _PASSED_SET.isdisjoint(body):
        return {}
    extra: dict[str, Any] = {k: body[k] for k in _PASSED if body.get(k) is not None}
    effort = get_str(reasoning or {}, "effort", "reasoning.effort")
    if effort is not None:
        extra["reasoning_effort"] = effort
    if text.get("verbosity") is not None:
        extra["verbosity"] = text["verbosity"]
    return extra


def _conversation(raw: Any) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    obj = require_dict(raw, "conversation")
    return get_str(obj, "id", "conversation.id", required=True)


def _include(raw: list[Any] | None) -> tuple[str, ...]:
    for i, value in enumerate(raw or ()):
        if not isinstance(value, str) or value not in _INCLUDE:
            raise bad(
                f"include[{i}]",
                f"unsupported value {value!r}; accepted: {', '.join(sorted(_INCLUDE))}",
            )
    return tuple(raw or ())


def _truncation(raw: Any) -> str:
    if raw is None:
        return "disabled"
    if raw not in ("auto", "disabled"):
        raise bad("truncation", f"must be 'auto' or 'disabled'; got {raw!r}")
    return str(raw)


def decode_metadata(raw: Any, param: str = "metadata") -> dict[str, str]:
    """A ``metadata`` object within the spec's limits ({} for null)."""
    return _metadata(get_dict({param: raw}, param, param), param)


def _metadata(raw: JSON | None, param: str = "metadata") -> dict[str, str]:
    """The spec's limits: at most 16 pairs, keys up to 64 characters, string values up to 512."""
    if raw is None:
        return {}
    if len(raw) > METADATA_KEYS:
        raise bad(param, f"accepts at most {METADATA_KEYS} keys, got {len(raw)}")
    for key, value in raw.items():
        if len(key) > METADATA_KEY_CHARS:
            raise bad(f"{param}.{key[:64]}", f"keys are at most {METADATA_KEY_CHARS} characters")
        if not isinstance(value, str) or len(value) > METADATA_VALUE_CHARS:
            raise bad(
                f"{param}.{key}", f"values are strings of at most {METADATA_VALUE_CHARS} characters"
            )
    return raw
