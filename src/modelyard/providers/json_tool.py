"""JSON answers through a forced tool call, for upstreams without native JSON output (or with it
turned off): the shapes the Anthropic and Bedrock codecs share.

The client's schema becomes the input schema of one synthetic tool, ``json_<name>``; the model
is made to call it, and the call's input is handed back as the answer's text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelyard.core.chat import ChatRequest, NamedToolChoice, ResponseFormat
from modelyard.core.errors import InvalidRequest

JSON_TOOL_PREFIX = "json_"
DESCRIPTION = (
    "Give your final answer by calling this tool; its input is the answer, a JSON value that "
    "follows the input schema."
)
# Both APIs limit tool names to 64 characters.
_MAX_NAME = 64


def client_demands_a_call(request: ChatRequest) -> bool:
    """True when the client requires a call of its own tools: no answer text is coming."""
    return request.tool_choice == "required" or isinstance(request.tool_choice, NamedToolChoice)


def client_tools_in_play(request: ChatRequest) -> bool:
    """With tools of its own in play the model may call those or answer: the JSON tool is then
    one choice among them rather than forced."""
    return bool(request.tools) and request.tool_choice != "none"


def tool_name(fmt: ResponseFormat, taken: Iterable[str | None]) -> str:
    """The synthetic tool's name; a client tool of that name is refused."""
    name = (JSON_TOOL_PREFIX + (fmt.name or "response"))[:_MAX_NAME]
    if name in set(taken):
        raise InvalidRequest(
            f"tools: the tool name {name!r} is reserved for JSON answers", param="tools"
        )
    return name


def object_schema(fmt: ResponseFormat, provider: str) -> dict[str, Any]:
    """The tool's input schema: the client's (a JSON object at its root), or any object."""
    schema = dict(fmt.schema) if fmt.kind == "json_schema" and fmt.schema else {}
    kind = schema.setdefault("type", "object")
    if kind != "object":
        raise InvalidRequest(
            f"response_format: provider {provider!r} needs a JSON schema whose root is an "
            f"object, got type {kind!r}",
            param="response_format",
        )
    return schema
