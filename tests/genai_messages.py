"""What the GenAI semantic conventions require of ``gen_ai.output.messages``, as a JSON Schema
to validate captured answers against.

Facts from the conventions' output-messages schema (``gen-ai-output-messages.json``, semantic
conventions 1.37 to 1.44): an array of output messages, each requiring ``role``, ``parts``
and ``finish_reason`` (one of ``stop``, ``length``, ``content_filter``, ``tool_call``,
``error``, or another string); every part requires ``type``; a ``text`` part requires
``content``, as does a ``reasoning`` part; a ``tool_call`` part requires ``name``.
"""

from __future__ import annotations

import json
from typing import Any, Final

import jsonschema_rs

GENAI_FINISH_REASONS: Final = ("stop", "length", "content_filter", "tool_call", "error")

_PART: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"type": "string"}},
    "allOf": [
        {
            "if": {"properties": {"type": {"enum": ["text", "reasoning"]}}},
            "then": {"required": ["content"], "properties": {"content": {"type": "string"}}},
        },
        {
            "if": {"properties": {"type": {"const": "tool_call"}}},
            "then": {"required": ["name"], "properties": {"name": {"type": "string"}}},
        },
    ],
}
OUTPUT_MESSAGES: Final[dict[str, Any]] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["role", "parts", "finish_reason"],
        "properties": {
            "role": {"type": "string"},
            "parts": {"type": "array", "items": _PART},
            "finish_reason": {"type": "string"},
        },
    },
}


def output_messages(recorded: object) -> list[dict[str, Any]]:
    """The recorded attribute parsed and checked against the conventions' required fields."""
    messages = json.loads(str(recorded))
    jsonschema_rs.validator_for(OUTPUT_MESSAGES).validate(messages)
    assert isinstance(messages, list)
    return messages
