"""Decode Messages API request bodies (``POST /v1/messages``, ``/count_tokens``) into core.

Every error names its field the way the body spells it
(``messages[1].content[0].source.media_type``). Field by field:

* ``system`` becomes a leading system message (one text part per block, with its cache
  breakpoint); ``messages`` turns become core messages (see ``content``), system turns included.
* ``tools`` are custom tools (``name``, ``description``, ``input_schema``, ``strict``,
  ``cache_control``) or server tools (``web_search_...``, ``code_execution_...``, ``bash_...``,
  ``text_editor_...``, ``computer_...``, ``web_fetch_...``), which travel whole as the tool's
  ``native`` definition: only the vendor runs them, so other upstreams refuse them by name.
* The ``anthropic-beta`` header (comma-separated names) becomes ``betas`` (``read_headers``).
* ``tool_choice``: ``auto`` → auto, ``any`` → required, ``tool`` → that tool, ``none`` → none;
  ``disable_parallel_tool_use: true`` → ``parallel_tool_calls: false``.
* ``stop_sequences`` → ``stop``; ``metadata.user_id`` → ``user``.
* ``top_k``, an enabled ``thinking`` and every field this module does not model travel in
  ``extra``, for targets that speak this API; ``thinking: {type: disabled}`` asks for the
  default and is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from modelyard.core.chat import (
    ChatRequest,
    Message,
    NamedToolChoice,
    ResponseFormat,
    ToolChoice,
    ToolSpec,
)
from modelyard.core.errors import InvalidRequest
from modelyard.protocols.anthropic.content import (
    DIALECT,
    cache_mark,
    system_message,
    turn_messages,
)
from modelyard.protocols.validate import (
    bad,
    each,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_number,
    get_str,
    nested,
    require_dict,
)

# Fields modelled by ChatRequest (or validated here); every other field travels in ``extra``.
_MODELLED = frozenset(
    {
        "model", "max_tokens", "messages", "system", "tools", "tool_choice", "stop_sequences",
        "temperature", "top_p", "metadata", "stream",
    }
)  # fmt: skip
_CUSTOM_TOOL_TYPES = (None, "custom")
# Server tools are versioned by a date suffix (``web_search_20250305``); the prefix names them.
SERVER_TOOL_PREFIXES = (
    "web_search_", "code_execution_", "bash_", "text_editor_", "computer_", "web_fetch_",
)  # fmt: skip
BETA_HEADER = "anthropic-beta"
_MAX_BETAS = 64
_MAX_BETA_CHARS = 128
_BETA_NAME = re.compile(rf"[A-Za-z0-9._-]{{1,{_MAX_BETA_CHARS}}}")
_TOOL_CHOICES = ("auto", "any", "tool", "none")
_THINKING_TYPES = ("enabled", "disabled", "adaptive")


def decode_messages(body: Any) -> ChatRequest:
    """A ``POST /v1/messages`` body as a core request."""
    return _decode(body, counting=False)


def read_headers(request: ChatRequest, header: Callable[[str], str | None]) -> None:
    """Header fields of this dialect: ``anthropic-beta`` into ``request.betas``."""
    raw = header(BETA_HEADER)
    if not raw:
        return
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    if len(names) > _MAX_BETAS or any(not _beta_name(name) for name in names):
        raise bad(
            BETA_HEADER,
            f"must be at most {_MAX_BETAS} comma-separated beta names (letters, digits, "
            f"'-', '_', '.', at most {_MAX_BETA_CHARS} characters each)",
        )
    request.betas = names


def _beta_name(name: str) -> bool:
    return _BETA_NAME.fullmatch(name) is not None


def decode_count_tokens(body: Any) -> ChatRequest:
    """A ``POST /v1/messages/count_tokens`` body: as a message request, without ``max_tokens``."""
    return _decode(body, counting=True)


def _decode(body: Any, *, counting: bool) -> ChatRequest:
    body = require_dict(body, "body")
    model = get_str(body, "model", "model", required=True) or ""
    max_tokens = get_int(body, "max_tokens", "max_tokens", minimum=1)
    if max_tokens is None and not counting:
        raise bad("max_tokens", "is required")
    choice, parallel = _tool_choice(get_dict(body, "tool_choice", "tool_choice"))
    metadata = get_dict(body, "metadata", "metadata") or {}
    stream = bool(get_bool(body, "stream", "stream")) and not counting
    return ChatRequest(
        model=model,
        messages=_messages(body),
        stream=stream,
        # Usage is part of every stream of this API; no option asks for it.
        include_usage=stream,
        max_tokens=max_tokens,
        temperature=get_number(body, "temperature", "temperature", minimum=0, maximum=1),
        top_p=get_number(body, "top_p", "top_p", minimum=0, maximum=1),
        stop=_stop_sequences(get_list(body, "stop_sequences", "stop_sequences")),
        tools=_tools(get_list(body, "tools", "tools")),
        tool_choice=choice,
        parallel_tool_calls=parallel,
        user=get_str(metadata, "user_id", "metadata.user_id"),
        response_format=_response_format(body),
        extra=_extra(body),
        extra_origin=DIALECT,
    )


def _response_format(body: dict[str, Any]) -> ResponseFormat | None:
    """``output_config.format`` (structured outputs) as the core's JSON-schema format."""
    config = get_dict(body, "output_config", "output_config") or {}
    fmt = get_dict(config, "format", "output_config.format")
    if fmt is None:
        return None
    kind = get_str(fmt, "type", "output_config.format.type", required=True)
    if kind != "json_schema":
        raise bad("output_config.format.type", f"must be 'json_schema'; got {kind!r}")
    schema = get_dict(fmt, "schema", "output_config.format.schema", required=True)
    return ResponseFormat("json_schema", schema=schema, name="output")


def _messages(body: dict[str, Any]) -> list[Message]:
    raw = get_list(body, "messages", "messages", required=True) or []
    if not raw:
        raise bad("messages", "must contain at least one message")
    messages: list[Message] = []
    system = system_message(body.get("system"))
    if system is not None:
        messages.append(system)
    for i, turn in enumerate(raw):
        try:
            messages.extend(turn_messages(turn))
        except InvalidRequest as exc:  # a field of the turn: named whole only now
            raise nested(f"messages[{i}]", exc) from None
    return messages


def _stop_sequences(raw: list[Any] | None) -> tuple[str, ...]:
    if not raw:
        return ()
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            raise bad(f"stop_sequences[{i}]", "must be a string")
    return tuple(raw)


def _tools(raw: list[Any] | None) -> tuple[ToolSpec, ...]:
    if not raw:
        return ()
    return tuple(each(raw, "tools", _tool))


def _tool(raw: Any) -> ToolSpec:
    """One of ``tools``; an error names the field relative to the tool (``each``)."""
    obj = require_dict(raw, "")
    kind = get_str(obj, "type", "type")
    name = get_str(obj, "name", "name", required=True) or ""
    if kind not in _CUSTOM_TOOL_TYPES:
        if not kind or not kind.startswith(SERVER_TOOL_PREFIXES):
            raise bad(
                "type",
                f"unknown tool type {kind!r}; accepted: custom tools (no type, or "
                "'custom') and the server tools "
                + ", ".join(f"{prefix}*" for prefix in SERVER_TOOL_PREFIXES),
            )
        return ToolSpec(name=name, cache=cache_mark(obj), native=obj)
    return ToolSpec(
        name=name,
        description=get_str(obj, "description", "description"),
        parameters=get_dict(obj, "input_schema", "input_schema", required=True),
        strict=get_bool(obj, "strict", "strict"),
        cache=cache_mark(obj),
    )


def _tool_choice(raw: dict[str, Any] | None) -> tuple[ToolChoice | None, bool | None]:
    """The core tool choice and ``parallel_tool_calls`` (``None`` when left to the default)."""
    if raw is None:
        return None, None
    kind = get_str(raw, "type", "tool_choice.type", required=True)
    if kind not in _TOOL_CHOICES:
        raise bad("tool_choice.type", f"must be one of {', '.join(_TOOL_CHOICES)}; got {kind!r}")
    disable = get_bool(raw, "disable_parallel_tool_use", "tool_choice.disable_parallel_tool_use")
    parallel = False if disable else None
    if kind == "tool":
        name = get_str(raw, "name", "tool_choice.name", required=True) or ""
        return NamedToolChoice(name), parallel
    if kind == "any":
        return "required", parallel
    return ("none", None) if kind == "none" else ("auto", parallel)


def _extra(body: dict[str, Any]) -> dict[str, Any]:
    get_int(body, "top_k", "top_k", minimum=0)  # validated here, sent as it is
    # An explicit null asks for the default, which leaving the field out also does.
    extra = {k: v for k, v in body.items() if k not in _MODELLED and v is not None}
    config = extra.get("output_config")
    if isinstance(config, dict) and "format" in config:
        # Decoded into response_format; the rest of output_config (e.g. effort) travels on.
        rest = {k: v for k, v in config.items() if k != "format"}
        if rest:
            extra["output_config"] = rest
        else:
            del extra["output_config"]
    thinking = get_dict(body, "thinking", "thinking")
    if thinking is not None:
        kind = get_str(thinking, "type", "thinking.type", required=True)
        if kind not in _THINKING_TYPES:
            raise bad("thinking.type", f"must be one of {', '.join(_THINKING_TYPES)}; got {kind!r}")
        if kind == "enabled":
            get_int(thinking, "budget_tokens", "thinking.budget_tokens", minimum=1)
            if thinking.get("budget_tokens") is None:
                raise bad("thinking.budget_tokens", "is required when thinking is enabled")
        if kind == "disabled":
            del extra["thinking"]
    return extra
