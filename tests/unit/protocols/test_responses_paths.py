"""A refused ``POST /v1/responses`` body names the field whole, at any depth, in the message and
in ``param``: items, their parts, tools and MCP tools are read with paths relative to themselves
and named whole only when something is wrong (``validate.each``/``nested``)."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.core.errors import InvalidRequest
from modelyard.protocols.openai.responses.decode import decode_response_request
from modelyard.protocols.openai.responses.items import canonical_items

_USER = {"role": "user", "content": "hi"}
_MCP = {"type": "mcp", "server_label": "docs", "server_url": "http://127.0.0.1:9/mcp"}


def _refused(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        decode_response_request({"model": "m", **body})
    return caught.value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": [_USER, 3]}, "input[1]: must be an object, got a number"),
        ({"input": [_USER, {"n": 1}]}, "input[1].type: is required (or a role, for a message)"),
        (
            {"input": [_USER, {"type": "message", "role": "user", "content": "a", "x": 1}]},
            "input[1].x: unknown field of a message item",
        ),
        (
            {"input": [{"role": "tool", "content": "a"}]},
            "input[0].role: must be one of user, system, developer, assistant; got 'tool'",
        ),
        (
            {"input": [_USER, {"role": "user", "content": [{"type": "input_text", "text": 1}]}]},
            "input[1].content[0].text: must be a string, got a number",
        ),
        (
            {"input": [{"role": "assistant", "content": [{"type": "refusal"}, {"type": "x"}]}]},
            "input[0].content[1].type: content part type 'x' is not supported here; accepted: "
            "output_text, refusal",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id: file ids are not supported; send image_url",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_data": "x"}]}]},
            "input[0].content[0].file_data: file type 'unknown' is not supported; accepted: "
            "images and text files as base64 data: URLs",
        ),
        (
            {
                "input": [
                    {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c", "output": [{"type": 2}]},
                ]
            },
            "input[1].output[0].type: must be a string, got a number",
        ),
        (
            {"input": [{"type": "reasoning", "summary": [{"type": "summary_text"}, {}]}]},
            "input[0].summary[1].type: must be 'summary_text'",
        ),
        (
            {"input": [{"type": "mcp_approval_response", "approval_request_id": "a"}]},
            "input[0].approve: is required (true or false)",
        ),
        (
            {"input": "hi", "tools": [{"type": "function", "name": "f"}, {"type": "function"}]},
            "tools[1].name: is required",
        ),
        (
            {
                "input": "hi",
                "tools": [
                    {
                        "type": "namespace",
                        "name": "ns",
                        "tools": [{"type": "function", "name": "a"}, {"type": "custom"}],
                    },
                ],
            },
            "tools[0].tools[1].type: must be 'function', got 'custom'",
        ),
        (
            {"input": "hi", "tools": [{"type": "web_search"}, {"type": "shell"}]},
            "tools[1].type: unknown or unsupported tool type 'shell'",
        ),
        (
            {"input": "hi", "tools": [{"type": "web_search"}, {**_MCP, "server_label": "a b"}]},
            "tools[1].server_label: must be 1-64 letters, digits, '_' or '-'",
        ),
        (
            {
                "input": "hi",
                "tools": [{**_MCP, "require_approval": {"never": {"tool_names": [""]}}}],
            },
            "tools[0].require_approval.never.tool_names[0]: must be a tool name "
            "(a non-empty string)",
        ),
        (
            {"input": "hi", "tools": [_MCP, _MCP]},
            "tools[1].server_label: 'docs' is offered twice",
        ),
    ],
)
def test_a_refused_field_is_named_whole(body: dict[str, Any], message: str):
    error = _refused(body)
    assert error.message.startswith(message), error.message
    assert error.param == message.split(": ", maxsplit=1)[0]


def test_a_text_file_that_does_not_decode_is_named_by_its_field():
    # Before, this one error named "input_file.file_data", a path no request has.
    file = {"type": "input_file", "file_data": "data:text/plain;base64,abc"}
    error = _refused(
        {"input": [_USER, {"role": "user", "content": [{"type": "input_text", "text": "a"}, file]}]}
    )
    assert error.param == "input[1].content[1].file_data"
    assert error.message == "input[1].content[1].file_data: is not a valid base64 data: URL"


def test_a_conversation_item_is_named_under_the_field_it_came_in():
    with pytest.raises(InvalidRequest) as caught:
        canonical_items([_USER, {"role": "user"}], "items")
    assert caught.value.message == (
        "items[1].content: must be a string or an array of content parts"
    )


@pytest.mark.parametrize("value", [[], {}, ["reasoning.encrypted_content"]])
def test_an_include_value_that_is_not_a_string_is_refused(value: Any):
    # Before, a TypeError (a 500): an unhashable value was looked up in a set.
    error = _refused({"input": "hi", "include": ["reasoning.encrypted_content", value]})
    assert error.param == "include[1]"
    assert error.message.startswith(f"include[1]: unsupported value {value!r}; accepted: ")
