"""Tool calling on a local model: the prompt that offers the tools, the grammar, the parser.

Small local models have no reliable tool-call syntax of their own, so the output is constrained
with a llama.cpp grammar built from a JSON schema: either ``{"name": <a tool>, "arguments":
{...its parameters}}`` or, when the model may answer in words (``tool_choice`` auto), ``{"answer":
"..."}``. The same JSON shape stands for earlier calls in the conversation, so the model sees its
own calls as it is asked to write them, and a tool's result is a ``tool`` turn naming the call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from modelyard.core.chat import Message, NamedToolChoice, ToolChoice, ToolSpec
from modelyard.core.errors import InternalError
from modelyard.protocols.validate import bad


def _parameters(tool: ToolSpec) -> dict[str, Any]:
    """The tool's parameters schema; any object when it declares none."""
    return dict(tool.parameters) if tool.parameters else {"type": "object"}


@dataclass(frozen=True)
class ToolOffer:
    """The tools a request offers the model, and whether it must call one."""

    tools: tuple[ToolSpec, ...]
    required: bool


def offer(tools: Sequence[ToolSpec], choice: ToolChoice | None) -> ToolOffer | None:
    """What ``tools`` and ``tool_choice`` ask of the model; ``None`` when no tool may be called."""
    if not tools or choice == "none":
        return None
    if isinstance(choice, NamedToolChoice):
        named = tuple(t for t in tools if t.name == choice.name)
        if not named:
            raise bad("tool_choice", f"names {choice.name!r}, which is not among the tools")
        return ToolOffer(named, required=True)
    return ToolOffer(tuple(tools), required=choice == "required")


def schema(tool_offer: ToolOffer) -> dict[str, Any]:
    """The JSON schema the output must match."""
    options: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {
                "name": {"const": tool.name},
                "arguments": _parameters(tool),
            },
            "required": ["name", "arguments"],
        }
        for tool in tool_offer.tools
    ]
    if not tool_offer.required:
        options.append(
            {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
            }
        )
    return options[0] if len(options) == 1 else {"oneOf": options}


def system_text(tool_offer: ToolOffer) -> str:
    """The instructions that tell the model which tools exist and how to answer."""
    lines = ["You can call these tools:"]
    for tool in tool_offer.tools:
        params = json.dumps(_parameters(tool), separators=(",", ":"))
        lines.append(f"- {tool.name}: {tool.description or ''} parameters: {params}")
    lines.append('To call a tool, reply {"name": <tool name>, "arguments": {...}}.')
    if not tool_offer.required:
        lines.append('To answer without a tool, reply {"answer": <your answer>}.')
    return "\n".join(lines)


def call_text(message: Message) -> str:
    """An assistant turn that called tools, in the shape the model is asked to write."""
    parts = [message.text()] if message.text() else []
    for call in message.tool_calls:
        try:
            arguments = orjson.loads(call.arguments or "{}")
        except orjson.JSONDecodeError:
            arguments = call.arguments  # kept as the client sent it; the model sees the text
        parts.append(json.dumps({"name": call.name, "arguments": arguments}))
    return "\n".join(parts)


@dataclass(frozen=True)
class Parsed:
    """What the model wrote: an answer, or one tool call (name, arguments JSON, call id)."""

    answer: str | None = None
    name: str = ""
    arguments: str = ""
    call_id: str = ""


def parse(text: str) -> Parsed:
    """Read the grammar-constrained output; a cut-off output (max_tokens) is kept as text."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Parsed(answer=text)
    if not isinstance(value, dict):
        raise InternalError("the local model wrote output outside its tool grammar")
    if "answer" in value:
        return Parsed(answer=str(value["answer"]))
    arguments = orjson.dumps(value.get("arguments", {})).decode()
    return Parsed(name=str(value["name"]), arguments=arguments, call_id=f"call_{uuid.uuid4().hex}")
