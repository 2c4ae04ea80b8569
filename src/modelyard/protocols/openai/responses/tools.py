"""Tools, tool choice and output format of a Responses request, as core specs.

Function tools map one to one. A ``namespace`` groups function tools (Codex's sub-agent tools);
upstreams have no namespaces, so each member is offered as ``<namespace>__<name>`` and the
model's calls are split back (``ToolNames``). Hosted tools (web search, file search...) run on
OpenAI's servers, not here: they are left out of what the model is offered and disclosed, or
refused, by the deployment's ``hosted_tools`` setting; forcing one is always refused. ``mcp``
tools are run by the gateway itself (``mcp.py``, ``services/tool_loop.py``).
"""

from __future__ import annotations

from typing import Any, Final

from modelyard.core.chat import NamedToolChoice, ResponseFormat, ToolChoice, ToolSpec
from modelyard.core.errors import InvalidRequest
from modelyard.core.mcp import function_name
from modelyard.protocols.openai.responses.request import JSON, ToolNames
from modelyard.protocols.validate import (
    bad,
    each,
    get_bool,
    get_dict,
    get_list,
    get_str,
    nested,
    require_dict,
)

HOSTED_TOOLS: Final = frozenset(
    {
        "web_search", "web_search_preview", "web_search_preview_2025_03_11",
        "web_search_2025_08_26", "file_search", "code_interpreter", "computer",
        "computer_use", "computer_use_preview", "image_generation", "tool_search",
    }
)  # fmt: skip
_MODES: Final = ("auto", "none", "required")
NO_NAMES: Final = ToolNames()


def decode_tools(raw: list[Any] | None) -> tuple[tuple[ToolSpec, ...], tuple[str, ...], ToolNames]:
    """(the function tools offered upstream, the hosted tool types found, namespace names)."""
    if not raw:
        return (), (), NO_NAMES
    specs: list[ToolSpec] = []
    hosted: list[str] = []
    flat: dict[str, tuple[str, str]] = {}
    for i, entry in enumerate(raw):
        try:
            _tool(entry, specs, hosted, flat)
        except InvalidRequest as exc:  # a field of the tool: named whole only now
            raise nested(f"tools[{i}]", exc) from None
    return tuple(specs), tuple(dict.fromkeys(hosted)), ToolNames(flat)


def _tool(
    entry: Any, specs: list[ToolSpec], hosted: list[str], flat: dict[str, tuple[str, str]]
) -> None:
    """One of ``tools``, added to what it is; fields named relative to it."""
    obj = require_dict(entry, "")
    kind = get_str(obj, "type", "type", required=True) or ""
    if kind == "function":
        specs.append(_function(obj, None))
    elif kind == "namespace":
        namespace = get_str(obj, "name", "name", required=True) or ""
        members = get_list(obj, "tools", "tools", required=True) or []
        for spec in each(members, "tools", lambda m: _function(require_dict(m, ""), namespace)):
            flat[spec.name] = (namespace, spec.name.removeprefix(namespace + "__"))
            specs.append(spec)
    elif kind in HOSTED_TOOLS:
        hosted.append(kind)
    elif kind != "mcp":  # an mcp tool is run by the gateway: ``mcp.decode_mcp_tools`` reads it
        raise bad(
            "type",
            f"unknown or unsupported tool type {kind!r}; accepted: function, namespace, mcp "
            f"(hosted tools are left out or refused by the deployment: {_hosted()})",
        )


def _function(obj: JSON, namespace: str | None) -> ToolSpec:
    if obj.get("type") != "function":
        raise bad("type", f"must be 'function', got {obj.get('type')!r}")
    name = get_str(obj, "name", "name", required=True) or ""
    return ToolSpec(
        name=f"{namespace}__{name}" if namespace else name,
        description=get_str(obj, "description", "description"),
        parameters=get_dict(obj, "parameters", "parameters"),
        strict=get_bool(obj, "strict", "strict"),
    )


def _hosted() -> str:
    return ", ".join(sorted(HOSTED_TOOLS))


def decode_tool_choice(raw: Any, names: ToolNames) -> ToolChoice | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw in _MODES:
            return raw  # type: ignore[return-value]  # narrowed by the membership test
        raise bad("tool_choice", f"must be one of {', '.join(_MODES)} or an object; got {raw!r}")
    obj = require_dict(raw, "tool_choice")
    kind = get_str(obj, "type", "tool_choice.type", required=True) or ""
    if kind == "function":
        name = get_str(obj, "name", "tool_choice.name", required=True) or ""
        namespace = get_str(obj, "namespace", "tool_choice.namespace")
        return NamedToolChoice(names.join(namespace, name))
    if kind == "mcp":  # the spec's ToolChoiceMCP: a tool of a server the gateway runs
        label = get_str(obj, "server_label", "tool_choice.server_label", required=True) or ""
        tool = get_str(obj, "name", "tool_choice.name")
        return NamedToolChoice(function_name(label, tool)) if tool else "required"
    if kind in HOSTED_TOOLS:
        raise bad(
            "tool_choice.type",
            f"hosted tool {kind!r} cannot be forced: this gateway does not run hosted tools",
        )
    raise bad("tool_choice.type", f"unsupported tool choice type {kind!r}; accepted: function, mcp")


def decode_text(raw: JSON | None) -> tuple[ResponseFormat | None, JSON]:
    """``text.format`` as a core response format, and the ``text`` object to echo."""
    if raw is None:
        return None, {"format": {"type": "text"}}
    unknown = sorted(set(raw) - {"format", "verbosity"})
    if unknown:
        raise bad(f"text.{unknown[0]}", "unknown field; accepted: format, verbosity")
    fmt = get_dict(raw, "format", "text.format")
    echo: JSON = {"format": fmt or {"type": "text"}}
    if raw.get("verbosity") is not None:
        echo["verbosity"] = raw["verbosity"]
    if fmt is None:
        return None, echo
    kind = get_str(fmt, "type", "text.format.type", required=True)
    if kind == "text":
        return None, echo
    if kind == "json_object":
        return ResponseFormat("json_object"), echo
    if kind == "json_schema":
        return (
            ResponseFormat(
                "json_schema",
                schema=get_dict(fmt, "schema", "text.format.schema", required=True),
                name=get_str(fmt, "name", "text.format.name", required=True),
                strict=get_bool(fmt, "strict", "text.format.strict"),
            ),
            echo,
        )
    raise bad("text.format.type", f"must be text, json_object or json_schema; got {kind!r}")
