"""Decode OpenAI Chat Completions and Embeddings request bodies into core requests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from modelyard.core.chat import (
    ChatRequest,
    ContentPart,
    ImagePart,
    Message,
    NamedToolChoice,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
)
from modelyard.core.embeddings import EmbeddingRequest
from modelyard.protocols.validate import (
    as_bool,
    as_dict,
    as_int,
    as_list,
    as_number,
    as_str,
    bad,
    each,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_str,
    require_dict,
)

_ROLES = ("system", "developer", "user", "assistant", "tool")
DIALECT = "openai"
_PART_TYPES = ("text", "image_url")
_REQUIRED = frozenset({"model", "messages"})
# The optional fields ChatRequest models, each with its reader (called on a non-null value):
# only the fields a body holds are read. Every other top-level field travels in ``extra``.
_OPTIONAL: Final[Mapping[str, Callable[[Any], Any]]] = MappingProxyType(
    {
        "stream": lambda v: as_bool(v, "stream"),
        "stream_options": lambda v: as_dict(v, "stream_options"),
        "max_tokens": lambda v: as_int(v, "max_tokens", minimum=1),
        "max_completion_tokens": lambda v: as_int(v, "max_completion_tokens", minimum=1),
        "temperature": lambda v: as_number(v, "temperature", minimum=0, maximum=2),
        "top_p": lambda v: as_number(v, "top_p", minimum=0, maximum=1),
        "stop": lambda v: _stop(v),  # noqa: PLW0108 (defined below)
        "seed": lambda v: as_int(v, "seed"),
        "n": lambda v: as_int(v, "n", minimum=1, maximum=128),
        "tools": lambda v: _tools(as_list(v, "tools")),
        "tool_choice": lambda v: _tool_choice(v),  # noqa: PLW0108 (defined below)
        "parallel_tool_calls": lambda v: as_bool(v, "parallel_tool_calls"),
        "response_format": lambda v: _response_format(as_dict(v, "response_format")),
        "user": lambda v: as_str(v, "user"),
        "metadata": lambda v: _metadata(as_dict(v, "metadata")),
    }
)


def decode_chat(body: Any) -> ChatRequest:
    body = require_dict(body, "body")
    read: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in body.items():
        reader = _OPTIONAL.get(key)
        if reader is not None:
            if value is not None:
                read[key] = reader(value)
        elif key not in _REQUIRED:
            extra[key] = value
    messages_raw = get_list(body, "messages", "messages", required=True) or []
    if not messages_raw:
        raise bad("messages", "must contain at least one message")
    options = read.pop("stream_options", None)
    include_usage = options and get_bool(options, "include_usage", "stream_options.include_usage")
    newer = read.pop("max_completion_tokens", None)
    if newer is not None:
        read["max_tokens"] = newer
    return ChatRequest(
        model=get_str(body, "model", "model", required=True) or "",
        messages=each(messages_raw, "messages", _message),
        stream=read.pop("stream", False),
        include_usage=bool(include_usage),
        extra=extra,
        extra_origin=DIALECT,
        **read,
    )


# A message, its parts and its tool calls are read with field paths relative to themselves:
# ``each`` names the element (``messages[0].content[1].text``) only in an error.


def _message(raw: Any) -> Message:
    obj = require_dict(raw, "")
    role = get_str(obj, "role", "role", required=True)
    if role not in _ROLES:
        raise bad("role", f"must be one of {', '.join(_ROLES)}; got {role!r}")
    tool_calls = _tool_calls(obj.get("tool_calls"))
    content = _content(obj.get("content"), role)
    refusal = None
    if role == "assistant":  # the only role with a refusal: no look-up for the others
        refusal = get_str(obj, "refusal", "refusal") or None
        if not content and not tool_calls and not refusal and obj.get("content") is None:
            raise bad("content", "an assistant message needs content, tool_calls or refusal")
    tool_call_id = get_str(obj, "tool_call_id", "tool_call_id", required=role == "tool")
    return Message(
        role=role,  # type: ignore[arg-type]  # checked against _ROLES above
        content=content,
        name=get_str(obj, "name", "name"),
        tool_calls=tool_calls,
        tool_call_id=tool_call_id,
        reasoning=get_str(obj, "reasoning_content", "reasoning_content"),
        refusal=refusal,
    )


def _content(raw: Any, role: str) -> tuple[ContentPart, ...]:
    if isinstance(raw, str):
        return (TextPart(raw),)
    if raw is None:
        if role == "assistant":
            return ()
        raise bad("content", "is required")
    if not isinstance(raw, list):
        raise bad("content", "must be a string or an array of content parts")
    return tuple(each(raw, "content", _user_part if role == "user" else _text_part))


def _user_part(raw: Any) -> ContentPart:
    return _part(raw, images=True)


def _text_part(raw: Any) -> ContentPart:
    return _part(raw, images=False)


def _part(raw: Any, *, images: bool) -> ContentPart:
    obj = require_dict(raw, "")
    kind = get_str(obj, "type", "type", required=True)
    if kind == "text":
        return TextPart(get_str(obj, "text", "text", required=True) or "")
    if kind == "image_url" and images:
        image = get_dict(obj, "image_url", "image_url", required=True) or {}
        url = get_str(image, "url", "image_url.url", required=True) or ""
        return ImagePart(url=url, detail=get_str(image, "detail", "image_url.detail"))
    accepted = "text, image_url" if images else "text"
    raise bad("type", f"content part type {kind!r} is not supported here; accepted: {accepted}")


def _tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    return tuple(each(as_list(raw, "tool_calls"), "tool_calls", _tool_call))


def _tool_call(raw: Any) -> ToolCall:
    obj = require_dict(raw, "")
    if obj.get("type") == "custom":
        custom = get_dict(obj, "custom", "custom", required=True) or {}
        call_id = get_str(obj, "id", "id", required=True) or ""
        name = get_str(custom, "name", "custom.name", required=True) or ""
        text = get_str(custom, "input", "custom.input") or ""
        return ToolCall(call_id, name, text, custom=True)
    fn = get_dict(obj, "function", "function", required=True) or {}
    return ToolCall(
        id=get_str(obj, "id", "id", required=True) or "",
        name=get_str(fn, "name", "function.name", required=True) or "",
        arguments=get_str(fn, "arguments", "function.arguments") or "",
    )


def _stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        if len(raw) > 4:
            raise bad("stop", f"accepts at most 4 sequences, got {len(raw)}")
        return tuple(raw)
    raise bad("stop", "must be a string or an array of strings")


def _tools(raw: list[Any] | None) -> tuple[ToolSpec, ...]:
    if not raw:
        return ()
    return tuple(each(raw, "tools", _tool))


def _tool(raw: Any) -> ToolSpec:
    """One of ``tools``; an error names the field relative to the tool (``each``)."""
    obj = require_dict(raw, "")
    kind = get_str(obj, "type", "type", required=True)
    if kind == "custom":
        return _custom_tool(obj)
    if kind != "function":
        raise bad("type", f"must be 'function' or 'custom', got {kind!r}")
    fn = get_dict(obj, "function", "function", required=True) or {}
    return ToolSpec(
        name=get_str(fn, "name", "function.name", required=True) or "",
        description=get_str(fn, "description", "function.description"),
        parameters=get_dict(fn, "parameters", "function.parameters"),
        strict=get_bool(fn, "strict", "function.strict"),
    )


def _custom_tool(obj: dict[str, Any]) -> ToolSpec:
    """A free-form tool: only an OpenAI-compatible upstream runs it, so it travels whole."""
    custom = get_dict(obj, "custom", "custom", required=True) or {}
    name = get_str(custom, "name", "custom.name", required=True) or ""
    description = get_str(custom, "description", "custom.description")
    return ToolSpec(name=name, description=description, native=obj)


def _tool_choice(raw: Any) -> ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "none", "required"):
        return raw  # type: ignore[no-any-return]  # narrowed by the membership test
    if isinstance(raw, dict):
        fn = get_dict(raw, "function", "tool_choice.function", required=True) or {}
        return NamedToolChoice(
            get_str(fn, "name", "tool_choice.function.name", required=True) or ""
        )
    raise bad(
        "tool_choice", "must be 'auto', 'none', 'required' or {type: function, function: {name}}"
    )


def _response_format(raw: dict[str, Any] | None) -> ResponseFormat | None:
    if raw is None:
        return None
    kind = get_str(raw, "type", "response_format.type", required=True)
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)  # type: ignore[arg-type]  # narrowed by the membership test
    if kind == "json_schema":
        spec = get_dict(raw, "json_schema", "response_format.json_schema", required=True) or {}
        return ResponseFormat(
            "json_schema",
            schema=get_dict(spec, "schema", "response_format.json_schema.schema"),
            name=get_str(spec, "name", "response_format.json_schema.name", required=True),
            strict=get_bool(spec, "strict", "response_format.json_schema.strict"),
        )
    raise bad("response_format.type", f"must be text, json_object or json_schema; got {kind!r}")


def _metadata(raw: dict[str, Any] | None) -> dict[str, str] | None:
    if raw is None:
        return None
    for key, value in raw.items():
        if not isinstance(value, str):
            raise bad(f"metadata.{key}", "metadata values must be strings")
    return raw


def decode_embeddings(body: Any) -> EmbeddingRequest:
    body = require_dict(body, "body")
    fmt = get_str(body, "encoding_format", "encoding_format")
    if fmt not in (None, "float", "base64"):
        raise bad("encoding_format", f"must be 'float' or 'base64', got {fmt!r}")
    known = {"model", "input", "dimensions", "user", "encoding_format"}
    return EmbeddingRequest(
        model=get_str(body, "model", "model", required=True) or "",
        inputs=_embedding_inputs(body.get("input")),
        dimensions=get_int(body, "dimensions", "dimensions", minimum=1),
        user=get_str(body, "user", "user"),
        extra={k: v for k, v in body.items() if k not in known},
    )


def _embedding_inputs(raw: Any) -> list[str] | list[list[int]]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw:
        if all(isinstance(x, str) for x in raw):
            return raw
        if all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
            return [raw]
        if all(isinstance(x, list) and all(isinstance(t, int) for t in x) for x in raw):
            return raw
    raise bad("input", "must be a string, an array of strings, or token arrays, and not empty")
