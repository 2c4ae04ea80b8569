"""MCP tools the gateway runs: a request's MCP tool (dialect-free) and the items of the loop.

The tool loop records its steps as the Responses API's items (``mcp_list_tools``,
``mcp_call``, ``mcp_approval_request``): they are what a response stores and what a later
turn reads back (the cached listing, the approvals asked), whatever API the request came
through. Each dialect decodes its own tool entries into ``McpToolRequest``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Final

JSON = dict[str, Any]
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_-]")


def fresh_item_id(prefix: str) -> str:
    """An item id: unique, not secret (items are reached only through their response)."""
    return f"{prefix}_{random.getrandbits(128):032x}"


@dataclass(frozen=True, slots=True)
class ToolFilter:
    """The spec's ``MCPToolFilter``: tool names and/or read-only tools."""

    names: frozenset[str] | None = None
    read_only: bool | None = None

    def matches(self, name: str, annotations: JSON | None) -> bool:
        if self.names is not None and name not in self.names:
            return False
        if self.read_only is not None:
            return bool((annotations or {}).get("readOnlyHint")) == self.read_only
        return self.names is not None


@dataclass(frozen=True, slots=True)
class McpToolRequest:
    """One ``mcp`` tool entry as sent (``headers`` may hold the client's secrets)."""

    label: str
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    allowed: ToolFilter | None = None  # None: every listed tool
    approval: str | tuple[ToolFilter | None, ToolFilter | None] = "always"  # (always, never)
    description: str | None = None
    denied: frozenset[str] = frozenset()  # tools turned off by name (the Messages API's configs)

    def allows(self, name: str, annotations: JSON | None) -> bool:
        if name in self.denied:
            return False
        allowed = self.allowed
        if allowed is None:
            return True
        if allowed.names is None and allowed.read_only is None:
            return True
        return allowed.matches(name, annotations)

    def needs_approval(self, name: str, annotations: JSON | None) -> bool:
        """The spec's default is ``always``; in the object form a tool matching ``never`` runs
        unasked, one matching ``always`` (or neither) waits for approval."""
        if isinstance(self.approval, str):
            return self.approval != "never"
        always, never = self.approval
        if always is not None and always.matches(name, annotations):
            return True
        return not (never is not None and never.matches(name, annotations))

    def __repr__(self) -> str:  # headers may hold secrets
        return f"McpToolRequest({self.label!r})"


def function_name(label: str, name: str) -> str:
    """The function name an MCP tool is offered to the model under: ``<label>__<name>``, with
    characters function names may not carry replaced and cut to 64 (the upstreams' limit)."""
    return _UNSAFE.sub("_", f"{label}__{name}")[:64]


def error_text(error: JSON) -> str:
    """What the model is told of a failed call."""
    if error.get("type") == "mcp_tool_execution_error":
        parts = error.get("content") or []
        text = " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
        return f"Error: the tool failed: {text}"
    return f"Error: the tool could not be run: {error.get('message', '')}"


def call_messages_text(item: JSON) -> str:
    """The tool result an ``mcp_call`` item gives the model."""
    if item.get("error"):
        return error_text(item["error"])
    return str(item.get("output") or "")


# Items


def list_tools_item(label: str, tools: list[JSON], error: str | None = None) -> JSON:
    return {
        "type": "mcp_list_tools",
        "id": fresh_item_id("mcpl"),
        "server_label": label,
        "tools": tools,
        "error": error,
    }


def call_item(
    label: str, name: str, arguments: str, approval_request_id: str | None = None
) -> JSON:
    """An ``mcp_call`` item, ``in_progress`` until ``finish_call``."""
    return {
        "type": "mcp_call",
        "id": fresh_item_id("mcp"),
        "server_label": label,
        "name": name,
        "arguments": arguments,
        "output": None,
        "error": None,
        "status": "in_progress",
        "approval_request_id": approval_request_id,
    }


def finish_call(item: JSON, output: str | None, error: JSON | None) -> JSON:
    item["output"], item["error"] = output, error
    item["status"] = "failed" if error is not None else "completed"
    return item


def approval_request_item(label: str, name: str, arguments: str) -> JSON:
    return {
        "type": "mcp_approval_request",
        "id": fresh_item_id("mcpr"),
        "server_label": label,
        "name": name,
        "arguments": arguments,
    }
