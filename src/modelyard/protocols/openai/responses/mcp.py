"""MCP tools of a Responses request (``{"type": "mcp", ...}``) and the items they make.

The gateway runs these tools itself (``services/tool_loop.py``); this module only reads the
request's tool entries and writes the spec's items: ``mcp_list_tools``, ``mcp_call``,
``mcp_approval_request``. Fields the gateway cannot honour (OpenAI's connectors and tunnels,
deferred loading) are refused with a 400 naming them, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from modelyard.core.errors import InvalidRequest
from modelyard.core.mcp import McpToolRequest, ToolFilter
from modelyard.protocols.openai.responses.request import JSON
from modelyard.protocols.validate import (
    bad,
    get_bool,
    get_dict,
    get_list,
    get_str,
    nested,
    require_dict,
)

_KEYS: Final = frozenset(
    {
        "type", "server_label", "server_url", "headers", "allowed_tools", "require_approval",
        "server_description", "authorization", "connector_id", "tunnel_id", "defer_loading",
        "allowed_callers",
    }
)  # fmt: skip
_LABEL: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_HEADERS: Final = 32
MAX_HEADER_CHARS: Final = 8192


def decode_mcp_tools(raw: list[Any] | None) -> tuple[McpToolRequest, ...]:
    """The request's ``mcp`` tools (400 naming the field on a wrong or unsupported one)."""
    found: list[McpToolRequest] = []
    labels: set[str] = set()
    for i, entry in enumerate(raw or ()):
        if isinstance(entry, dict) and entry.get("type") == "mcp":
            try:
                tool = _decode(entry)
            except InvalidRequest as exc:  # a field of the tool: named whole only now
                raise nested(f"tools[{i}]", exc) from None
            if tool.label in labels:
                raise bad(f"tools[{i}].server_label", f"{tool.label!r} is offered twice")
            labels.add(tool.label)
            found.append(tool)
    return tuple(found)


def _decode(obj: JSON) -> McpToolRequest:
    """One ``mcp`` tool, its fields named relative to it."""
    unknown = sorted(set(obj) - _KEYS)
    if unknown:
        raise bad(unknown[0], "unknown field of an mcp tool")
    for name in ("connector_id", "tunnel_id", "allowed_callers"):
        if obj.get(name) is not None:
            raise bad(
                name,
                "is not supported by this gateway; give server_url or the label of a server "
                "the operator configured",
            )
    if get_bool(obj, "defer_loading", "defer_loading"):
        raise bad("defer_loading", "deferred MCP tools are not supported; remove it")
    label = get_str(obj, "server_label", "server_label", required=True) or ""
    if not _LABEL.match(label):
        raise bad("server_label", "must be 1-64 letters, digits, '_' or '-'")
    headers = _headers(get_dict(obj, "headers", "headers"), "headers")
    token = get_str(obj, "authorization", "authorization")
    if token:
        headers = (*[h for h in headers if h[0].lower() != "authorization"],
                   ("Authorization", f"Bearer {token}"))  # fmt: skip
    return McpToolRequest(
        label=label,
        url=get_str(obj, "server_url", "server_url"),
        headers=headers,
        allowed=_allowed(obj.get("allowed_tools"), "allowed_tools"),
        approval=_approval(obj.get("require_approval"), "require_approval"),
        description=get_str(obj, "server_description", "server_description"),
    )


def _headers(raw: JSON | None, param: str) -> tuple[tuple[str, str], ...]:
    if not raw:
        return ()
    if len(raw) > MAX_HEADERS:
        raise bad(param, f"accepts at most {MAX_HEADERS} headers")
    out = []
    for key, value in raw.items():
        if not isinstance(value, str) or len(value) + len(key) > MAX_HEADER_CHARS:
            raise bad(f"{param}.{key[:64]}", "must be a string (a header of at most 8 KB)")
        if "\n" in value or "\r" in value or "\n" in key or "\r" in key:
            raise bad(f"{param}.{key[:64]}", "must not contain line breaks")
        out.append((key, value))
    return tuple(out)


def _filter(raw: Any, param: str) -> ToolFilter:
    if isinstance(raw, list):
        return ToolFilter(names=frozenset(_names(raw, param)))
    obj = require_dict(raw, param)
    unknown = sorted(set(obj) - {"tool_names", "read_only"})
    if unknown:
        raise bad(f"{param}.{unknown[0]}", "unknown field; accepted: tool_names, read_only")
    names = get_list(obj, "tool_names", f"{param}.tool_names")
    return ToolFilter(
        names=frozenset(_names(names, f"{param}.tool_names")) if names is not None else None,
        read_only=get_bool(obj, "read_only", f"{param}.read_only"),
    )


def _names(raw: Sequence[Any], param: str) -> list[str]:
    for j, name in enumerate(raw):
        if not isinstance(name, str) or not name:
            raise bad(f"{param}[{j}]", "must be a tool name (a non-empty string)")
    return list(raw)


def _allowed(raw: Any, param: str) -> ToolFilter | None:
    return None if raw is None else _filter(raw, param)


def _approval(raw: Any, param: str) -> str | tuple[ToolFilter | None, ToolFilter | None]:
    if raw is None:
        return "always"
    if isinstance(raw, str):
        if raw not in ("always", "never"):
            raise bad(param, f"must be 'always', 'never' or a filter object; got {raw!r}")
        return raw
    obj = require_dict(raw, param)
    unknown = sorted(set(obj) - {"always", "never"})
    if unknown:
        raise bad(f"{param}.{unknown[0]}", "unknown field; accepted: always, never")
    always = _filter(obj["always"], f"{param}.always") if obj.get("always") is not None else None
    never = _filter(obj["never"], f"{param}.never") if obj.get("never") is not None else None
    return (always, never)


def redacted_tools(tools: list[JSON]) -> list[JSON]:
    """The request's tools as echoed in the ``Response``: MCP header values and tokens hidden."""
    out = []
    for entry in tools:
        tool = entry
        if isinstance(entry, dict) and entry.get("type") == "mcp":
            tool = dict(entry)
            if isinstance(tool.get("headers"), dict):
                tool["headers"] = {k: "<redacted>" for k in tool["headers"]}
            if tool.get("authorization") is not None:
                tool["authorization"] = "<redacted>"
        out.append(tool)
    return out
