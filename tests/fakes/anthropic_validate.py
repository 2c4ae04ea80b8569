"""What the fake Messages API rejects before answering, with the real API's 400 messages.

The checks are the ones a gateway can get wrong: unknown top-level fields (OpenAI parameters
leaking through), a missing ``max_tokens``, roles other than user/assistant, empty text blocks,
image sources, tool results that do not answer the previous turn's tool uses, thinking budgets,
forced tool use with thinking, and thinking blocks sent back without their signature.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .anthropic_wire import REDACTED_DATA, signature_for

FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
        "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
        "cache_control", "output_config", "container", "mcp_servers", "context_management",
        "inference_geo",
    }
)  # fmt: skip
COUNT_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking"})
MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_BLOCKS = {
    "user": {"text", "image", "tool_result", "document"},
    "assistant": {
        "text",
        "tool_use",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
    },
    "system": {"text"},
}


MID_SYSTEM_BETA = "mid-conversation-system-"
_THOUGHTS = ("thinking", "redacted_thinking")


def check_request(
    body: Mapping[str, Any], *, counting: bool = False, betas: str = ""
) -> str | None:
    """The error message the real API would send for ``body``, or None when it is fine.

    ``betas`` is the request's ``anthropic-beta`` header: with a ``mid-conversation-system-*``
    beta, ``system`` turns (text blocks only) are accepted after the first turn."""
    allowed = COUNT_FIELDS if counting else FIELDS
    for key in body:
        if key not in allowed:
            return f"{key}: Extra inputs are not permitted"
    required = ("model", "messages") if counting else ("model", "messages", "max_tokens")
    for key in required:
        if key not in body:
            return f"{key}: Field required"
    if not counting and (not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1):
        return "max_tokens: Input should be greater than or equal to 1"
    for check in (_sampling, _system, _tools, _thinking):
        error = check(body)
        if error is not None:
            return error
    return _messages(body, mid_system=MID_SYSTEM_BETA in betas)


def _sampling(body: Mapping[str, Any]) -> str | None:
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
            return f"{key}: Input should be less than or equal to 1"
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping):
        for key in metadata:
            if key != "user_id":
                return f"metadata.{key}: Extra inputs are not permitted"
    return None


def _system(body: Mapping[str, Any]) -> str | None:
    system = body.get("system")
    if system is None or isinstance(system, str):
        return None
    if not isinstance(system, list):
        return "system: Input should be a valid list"
    for i, block in enumerate(system):
        if not isinstance(block, Mapping) or block.get("type") != "text":
            return f"system.{i}.type: Input should be 'text'"
        if not block.get("text"):
            return "system: text content blocks must be non-empty"
    return None


def _messages(body: Mapping[str, Any], *, mid_system: bool) -> str | None:
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        error = _message(message, i, mid_system=mid_system and i > 0)
        if error is not None:
            return error
    return _tool_pairs(messages)


def _message(message: Any, i: int, *, mid_system: bool) -> str | None:
    if not isinstance(message, Mapping):
        return f"messages.{i}: Input should be a valid dictionary"
    role = message.get("role")
    if role not in _BLOCKS or (role == "system" and not mid_system):
        if role == "system":
            return (
                'messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.'
            )
        return f"messages.{i}.role: Input should be 'user' or 'assistant'"
    content = message.get("content")
    if isinstance(content, str):
        return None if content else "messages: text content blocks must be non-empty"
    if not isinstance(content, list):
        return f"messages.{i}.content: Input should be a valid list"
    for j, block in enumerate(content):
        error = _block(block, role, f"messages.{i}.content.{j}")
        if error is not None:
            return error
    return None


def _block(block: Any, role: str, where: str) -> str | None:
    kind = block.get("type") if isinstance(block, Mapping) else None
    if kind not in _BLOCKS[role]:
        return f"{where}.type: Input tag {kind!r} is not a valid block type for role {role}"
    if kind == "text" and not block.get("text"):
        return "messages: text content blocks must be non-empty"
    if kind == "image":
        return _image(block.get("source"), f"{where}.image.source")
    if kind == "tool_use" and not isinstance(block.get("input"), Mapping):
        return f"{where}.tool_use.input: Input should be a valid dictionary"
    if kind == "thinking" and block.get("signature") != signature_for(str(block.get("thinking"))):
        return f"{where}: Invalid `signature` in `thinking` block"
    if kind == "redacted_thinking" and block.get("data") != REDACTED_DATA:
        return f"{where}: Invalid `data` in `redacted_thinking` block"
    return None


def _image(source: Any, where: str) -> str | None:
    if not isinstance(source, Mapping):
        return f"{where}: Field required"
    if source.get("type") == "url":
        return None if isinstance(source.get("url"), str) else f"{where}.url.url: Field required"
    if source.get("type") != "base64":
        return f"{where}: Input tag {source.get('type')!r} is not a valid source type"
    if source.get("media_type") not in MEDIA_TYPES:
        return f"{where}.base64.media_type: Input should be {', '.join(MEDIA_TYPES)}"
    return None if source.get("data") else f"{where}.base64.data: Field required"


def _tool_pairs(messages: list[Mapping[str, Any]]) -> str | None:
    previous: set[str] = set()
    for i, message in enumerate(messages):
        blocks = message["content"] if isinstance(message["content"], list) else []
        results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
        for unexpected in sorted(str(r) for r in results - previous):
            return (
                f"messages.{i}.content.0: unexpected `tool_use_id` found in `tool_result` "
                f"blocks: {unexpected}. Each `tool_result` block must have a corresponding "
                "`tool_use` block in the previous message."
            )
        if previous - results:
            return (
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(sorted(previous - results))}. Each `tool_use` "
                "block must have a corresponding `tool_result` block in the next message."
            )
        previous = {b["id"] for b in blocks if b.get("type") == "tool_use"}
        if message["role"] == "user":
            previous = set()
    return None


def _tools(body: Mapping[str, Any]) -> str | None:
    tools = body.get("tools") or []
    names = set()
    for i, tool in enumerate(tools):
        if not _TOOL_NAME.fullmatch(str(tool.get("name"))):
            return f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        names.add(tool["name"])
        if tool.get("type") not in (None, "custom"):
            continue  # a server tool: the vendor's own definition, no schema
        schema = tool.get("input_schema")
        if not isinstance(schema, Mapping) or schema.get("type") != "object":
            return f"tools.{i}.custom.input_schema.type: Input should be 'object'"
        names.add(tool["name"])
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping):
        if choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice: Input tag is not a valid tool choice type"
        if choice.get("type") == "tool" and choice.get("name") not in names:
            return f"tool_choice.tool.name: Tool '{choice.get('name')}' not found in tools"
    return None


def _thinking(body: Mapping[str, Any]) -> str | None:
    thinking = body.get("thinking")
    if not isinstance(thinking, Mapping) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if "max_tokens" in body and body["max_tokens"] <= budget:
        return "`max_tokens` must be greater than `thinking.budget_tokens`."
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    last = body["messages"][-1]
    content = last["content"] if isinstance(last["content"], list) else []
    if last["role"] == "assistant" and content and content[0].get("type") == "tool_use":
        return (
            "messages.{}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
            "`tool_use`. When `thinking` is enabled, a final `assistant` message must start "
            "with a thinking block.".format(len(body["messages"]) - 1)
        )
    return _thinking_before_tool_results(body["messages"])


def _thinking_before_tool_results(messages: list[Mapping[str, Any]]) -> str | None:
    # A turn answering tool uses continues the assistant's turn, which must have kept its thinking.
    for i in range(1, len(messages)):
        previous, message = messages[i - 1], messages[i]
        blocks = message["content"] if isinstance(message["content"], list) else []
        answered = any(b.get("type") == "tool_result" for b in blocks)
        earlier = previous["content"] if isinstance(previous["content"], list) else []
        thought = earlier[:1] and earlier[0]["type"] in _THOUGHTS
        if answered and i == len(messages) - 1 and earlier[:1] and not thought:
            return (
                f"messages.{i - 1}.content.0.type: Expected `thinking` or `redacted_thinking`, "
                f"but found `{earlier[0]['type']}`. When `thinking` is enabled, a final "
                "`assistant` message must start with a thinking block."
            )
    return None
