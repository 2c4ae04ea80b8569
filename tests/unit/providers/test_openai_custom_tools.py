"""OpenAI's free-form (``type: "custom"``) tools: decoded whole, passed through to OpenAI-
compatible upstreams, their calls parsed and encoded back as custom calls; refused by name at
upstreams of other APIs."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard.core.errors import InvalidRequest
from modelyard.core.events import ToolCallDelta
from modelyard.protocols.openai import encode
from modelyard.protocols.openai.decode import decode_chat
from modelyard.providers.anthropic.codec import BuildOptions, build_request
from modelyard.providers.gemini import codec as gemini
from modelyard.providers.openai_compatible import codec
from modelyard.providers.openai_compatible.presets import PRESETS

GRAMMAR = {
    "type": "custom",
    "custom": {
        "name": "sql",
        "description": "Run SQL",
        "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": "start: /.+/"}},
    },
}
CALL = {"id": "call_1", "type": "custom", "custom": {"name": "sql", "input": "SELECT 1"}}


def body(**kw: Any) -> dict[str, Any]:
    return {"model": "d", "messages": [{"role": "user", "content": "q"}], **kw}


def test_a_custom_tool_reaches_an_openai_upstream_as_written():
    request = decode_chat(body(tools=[GRAMMAR]))
    assert request.tools[0].name == "sql" and request.tools[0].native == GRAMMAR
    sent = orjson.loads(codec.build_body(request, "gpt-5", PRESETS["openai"], False))
    assert sent["tools"] == [GRAMMAR]


def test_a_custom_call_in_the_history_goes_back_as_a_custom_call():
    history = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "1"},
    ]
    request = decode_chat(body(messages=history, tools=[GRAMMAR]))
    assert request.messages[1].tool_calls[0].custom
    sent = orjson.loads(codec.build_body(request, "gpt-5", PRESETS["openai"], False))
    assert sent["messages"][1]["tool_calls"] == [CALL]


def test_a_custom_call_in_an_answer_is_parsed_and_encoded_back():
    answer = {
        "id": "x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [CALL]},
                "finish_reason": "tool_calls",
            }
        ],
    }
    result = codec.parse_response(answer, "oa")
    call = result.choices[0].message.tool_calls[0]
    assert (call.name, call.arguments, call.custom) == ("sql", "SELECT 1", True)
    assert encode.message_json(result.choices[0].message)["tool_calls"] == [CALL]
    chunk = {
        "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, **CALL}]}}],
    }
    (event,) = codec.parse_chunk(chunk)
    assert event == ToolCallDelta(0, "SELECT 1", "call_1", "sql", 0, custom=True)
    frame = encode.ChunkEncoder("c", 1, "d", False).encode(event) or b""
    sent = orjson.loads(frame.removeprefix(b"data: "))
    assert sent["choices"][0]["delta"]["tool_calls"] == [{"index": 0, **CALL}]


def test_a_custom_tool_is_refused_by_name_elsewhere():
    request = decode_chat(body(tools=[GRAMMAR]))
    with pytest.raises(InvalidRequest) as info:
        build_request(request, "claude-x", BuildOptions("claude"), stream=False)
    assert info.value.param == "tools[0].type" and "'sql'" in str(info.value)
    with pytest.raises(InvalidRequest):
        gemini.build_body(request, "gemini-2.5-flash")
