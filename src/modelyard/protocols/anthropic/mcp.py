"""The Messages API's MCP connector: ``mcp_servers`` and ``mcp_toolset`` tools, read into the
gateway's MCP tool requests, and the ``mcp_tool_use``/``mcp_tool_result`` blocks.

Both shapes of the connector are read: ``mcp_servers[].tool_configuration`` (``enabled``,
``allowed_tools``: beta ``mcp-client-2025-04-04``) and ``mcp_toolset`` tools naming a server
(``default_config.enabled``, per-tool ``configs``: ``mcp-client-2025-11-20``). With toolsets, a
server no toolset names offers no tools. The connector has no approval step: tools run when
the model calls them. Earlier turns' ``mcp_tool_use``/``mcp_tool_result`` blocks become a tool
call and its result, so a conversation continues on any model. Fields the gateway cannot honour
are refused with a 400 naming them.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from modelyard.core.mcp import McpToolRequest, ToolFilter, call_messages_text, function_name
from modelyard.protocols.anthropic.encode import tool_input
from modelyard.protocols.anthropic.stream import frame
from modelyard.protocols.validate import bad, get_bool, get_dict, get_list, get_str, require_dict

JSON = dict[str, Any]
_SERVER_KEYS: Final = frozenset(
    {"type", "url", "name", "authorization_token", "tool_configuration"}
)
_TOOLSET_KEYS: Final = frozenset({"type", "mcp_server_name", "default_config", "configs",
                                  "cache_control"})  # fmt: skip


def split_connector(body: JSON) -> tuple[JSON, tuple[McpToolRequest, ...]] | None:
    """``(the body without the connector's parts, its servers)``; None when it uses none."""
    tools = body.get("tools")
    toolsets = [t for t in tools if _is_toolset(t)] if isinstance(tools, list) else []
    if body.get("mcp_servers") is None and not toolsets:
        return None
    servers = get_list(body, "mcp_servers", "mcp_servers") or []
    if not servers:
        raise bad("mcp_servers", "is required with mcp_toolset tools (at least one server)")
    by_name = {_name(s, f"mcp_servers[{i}]"): (i, s) for i, s in enumerate(servers)}
    named: dict[str, JSON] = {}
    for i, tool in enumerate(tools or []):
        if _is_toolset(tool):
            p = f"tools[{i}]"
            unknown = sorted(set(tool) - _TOOLSET_KEYS)
            if unknown:
                raise bad(f"{p}.{unknown[0]}", "unknown field of an mcp_toolset tool")
            server = get_str(tool, "mcp_server_name", f"{p}.mcp_server_name", required=True) or ""
            if server not in by_name:
                raise bad(f"{p}.mcp_server_name", f"names no server of mcp_servers: {server!r}")
            named[server] = tool
    requests = []
    for name, (i, server) in by_name.items():
        toolset = named.get(name)
        if toolsets and toolset is None:
            continue  # with toolsets, a server offers tools only through one
        found = _server(server, f"mcp_servers[{i}]", toolset)
        if found is not None:
            requests.append(found)
    plain = {k: v for k, v in body.items() if k != "mcp_servers"}
    if isinstance(tools, list):
        plain["tools"] = [t for t in tools if not _is_toolset(t)]
    if isinstance(body.get("messages"), list):
        plain["messages"] = _history(body["messages"])
    return plain, tuple(requests)


def _is_toolset(tool: Any) -> bool:
    return isinstance(tool, dict) and tool.get("type") == "mcp_toolset"


def _name(server: Any, p: str) -> str:
    obj = require_dict(server, p)
    return get_str(obj, "name", f"{p}.name", required=True) or ""


def _server(raw: JSON, p: str, toolset: JSON | None) -> McpToolRequest | None:
    unknown = sorted(set(raw) - _SERVER_KEYS)
    if unknown:
        raise bad(f"{p}.{unknown[0]}", "unknown field of an MCP server")
    if raw.get("type", "url") != "url":
        raise bad(f"{p}.type", "must be 'url'")
    url = get_str(raw, "url", f"{p}.url", required=True)
    token = get_str(raw, "authorization_token", f"{p}.authorization_token")
    headers = (("Authorization", f"Bearer {token}"),) if token else ()
    config = get_dict(raw, "tool_configuration", f"{p}.tool_configuration") or {}
    if get_bool(config, "enabled", f"{p}.tool_configuration.enabled") is False:
        return None
    allowed = get_list(config, "allowed_tools", f"{p}.tool_configuration.allowed_tools")
    denied: set[str] = set()
    if toolset is not None:
        default = get_dict(toolset, "default_config", "default_config") or {}
        configs = get_dict(toolset, "configs", "configs") or {}
        enabled = {n for n, c in configs.items() if isinstance(c, dict) and c.get("enabled")}
        denied = {
            n for n, c in configs.items() if isinstance(c, dict) and c.get("enabled") is False
        }
        if default.get("defer_loading") or any(
            isinstance(c, dict) and c.get("defer_loading") for c in configs.values()
        ):
            raise bad("tools", "deferred MCP tools (defer_loading) are not supported")
        if default.get("enabled") is False:
            allowed = sorted(enabled)  # only the tools turned on one by one
            if not allowed:
                return None
    return McpToolRequest(
        label=_name(raw, p),
        url=url,
        headers=headers,
        allowed=ToolFilter(names=frozenset(map(str, allowed))) if allowed is not None else None,
        approval="never",
        denied=frozenset(denied),
    )


def _history(messages: list[Any]) -> list[Any]:
    """Earlier turns' ``mcp_tool_use``/``mcp_tool_result`` blocks as ``tool_use`` and
    ``tool_result`` (the result in a user turn of its own, as every chat API wants)."""
    out: list[Any] = []
    for turn in messages:
        content = turn.get("content") if isinstance(turn, dict) else None
        if not isinstance(content, list) or not any(_is_mcp_block(b) for b in content):
            out.append(turn)
            continue
        blocks: list[Any] = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "mcp_tool_use":
                name = function_name(str(block.get("server_name", "")), str(block.get("name", "")))
                blocks.append({"type": "tool_use", "id": block.get("id"), "name": name,
                               "input": block.get("input") or {}})  # fmt: skip
            elif isinstance(block, dict) and block.get("type") == "mcp_tool_result":
                if blocks:
                    out.append({"role": turn.get("role"), "content": blocks})
                result = {k: block[k] for k in ("tool_use_id", "content", "is_error") if k in block}
                out.append({"role": "user", "content": [{"type": "tool_result", **result}]})
                blocks = []
            else:
                blocks.append(block)
        if blocks:
            out.append({"role": turn.get("role"), "content": blocks})
    return out


def _is_mcp_block(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") in ("mcp_tool_use", "mcp_tool_result")


def connector_blocks(item: JSON) -> list[JSON]:
    """An ``mcp_call`` item of the tool loop as the connector's two blocks."""
    failed = item.get("error") is not None
    return [
        {"type": "mcp_tool_use", "id": item["id"], "name": item["name"],
         "server_name": item["server_label"], "input": tool_input(item["arguments"])},
        {"type": "mcp_tool_result", "tool_use_id": item["id"], "is_error": failed,
         "content": [{"type": "text", "text": call_messages_text(item)}]},
    ]  # fmt: skip


def connector_stream(message: JSON) -> bytes:
    """A finished answer as the Messages API's event stream: ``message_start``, each content
    block as ``content_block_start``, its deltas (text, tool input JSON, thinking) and
    ``content_block_stop``, then ``message_delta`` and ``message_stop``. The tool loop's
    answers are whole, so the stream is written once the loop is done."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**usage, "output_tokens": 0}}  # fmt: skip
    out = [frame("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        out += _block_frames(index, block)
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    tail = {"type": "message_delta", "delta": delta,
            "usage": {"output_tokens": usage["output_tokens"]}}  # fmt: skip
    out.append(frame("message_delta", tail))
    out.append(frame("message_stop", {"type": "message_stop"}))
    return b"".join(out)


def _block_frames(index: int, block: JSON) -> list[bytes]:
    kind = block["type"]
    deltas: list[JSON] = []
    opened = dict(block)
    if kind == "text":
        opened["text"] = ""
        deltas.append({"type": "text_delta", "text": block["text"]})
    elif kind in ("tool_use", "mcp_tool_use"):
        opened["input"] = {}
        deltas.append({"type": "input_json_delta",
                       "partial_json": orjson.dumps(block["input"]).decode()})  # fmt: skip
    elif kind == "thinking":
        opened["thinking"], opened["signature"] = "", ""
        deltas.append({"type": "thinking_delta", "thinking": block["thinking"]})
        if block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    began = {"type": "content_block_start", "index": index, "content_block": opened}
    out = [frame("content_block_start", began)]
    for delta in deltas:
        moved = {"type": "content_block_delta", "index": index, "delta": delta}
        out.append(frame("content_block_delta", moved))
    out.append(frame("content_block_stop", {"type": "content_block_stop", "index": index}))
    return out
