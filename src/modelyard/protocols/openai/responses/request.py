"""The decoded Responses request: the core chat request plus what only this API has."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from time import time
from types import MappingProxyType
from typing import Any

from modelyard.core.chat import ChatRequest
from modelyard.core.ids import timed_id
from modelyard.core.mcp import McpToolRequest

JSON = dict[str, Any]


def new_id(prefix: str) -> str:
    """An object id in OpenAI's style (``resp_…``, ``conv_…``): the time it was made, then
    128 bits from the OS (``core.ids``: a reader tells a fresh id from an old one)."""
    return timed_id(prefix)


def fresh_item_id(prefix: str) -> str:
    """An item id (``msg_…``, ``fc_…``, ``rs_…``) in ``core.ids``' shape, so that a reader
    tells an item another process may not have written yet (``item_reference``) from an old
    one; unique, not secret (items are reached only through their owner's responses and
    conversations), so a fast generator will do: no system call."""
    return f"{prefix}_{int(time() * 1000):012x}{random.getrandbits(128):032x}"


@dataclass(slots=True, frozen=True)
class ToolNames:
    """Flattened namespace tools: the upstream's function name → (namespace, name)."""

    flat: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))

    def split(self, name: str) -> tuple[str | None, str]:
        found = self.flat.get(name)
        return (found[0], found[1]) if found else (None, name)

    def join(self, namespace: str | None, name: str) -> str:
        return f"{namespace}__{name}" if namespace else name


@dataclass(slots=True)
class ResponsesRequest:
    """``chat`` is what goes to the pipeline; the rest is echoed in the ``Response`` object,
    stored, or steers the service (``store``, ``previous_response_id``, ``conversation``).

    ``items`` are the request's input items in their canonical (listed) shape, each with an
    id; ``references`` are the positions in ``items`` of ``item_reference`` items, replaced by
    the stored items they name before the request is sent; ``instructions`` become the first
    message of ``chat`` but are never stored as items (the spec: they do not carry over to a
    later response).
    """

    chat: ChatRequest
    items: list[JSON]
    instructions: str | None
    tools: list[JSON]  # as the client sent them (hosted ones included), for the echo
    tool_choice: Any
    text: JSON
    reasoning: JSON | None
    metadata: dict[str, str]
    store: bool = True
    background: bool = False
    previous_response_id: str | None = None
    conversation: str | None = None
    include: tuple[str, ...] = ()
    truncation: str = "disabled"
    max_output_tokens: int | None = None
    hosted: tuple[str, ...] = ()  # hosted tool types offered that we cannot run
    names: ToolNames = field(default_factory=ToolNames)
    mcp: tuple[McpToolRequest, ...] = ()  # the ``mcp`` tools, run by the gateway
    max_tool_calls: int | None = None
    echo: JSON = field(default_factory=dict)  # other fields echoed as sent (user, ...)
    references: tuple[int, ...] = ()

    @property
    def encrypted_reasoning(self) -> bool:
        return "reasoning.encrypted_content" in self.include
