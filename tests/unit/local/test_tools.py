"""Tool calling on a local model: what is offered, the grammar's schema, folding, parsing."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

from modelyard.core.chat import NamedToolChoice, ToolSpec
from modelyard.core.errors import InternalError, InvalidRequest
from modelyard.local import tools
from modelyard.local.wire import parse_chat

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = ToolSpec("get_weather", "The weather.", CITY)
HANDOFF = ToolSpec("transfer_to_agent", None, None)


def _tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": CITY}}


def test_no_tools_or_choice_none_offers_nothing() -> None:
    assert tools.offer((), "auto") is None
    assert tools.offer((WEATHER,), "none") is None


def test_auto_lets_the_model_answer_required_and_named_do_not() -> None:
    auto = tools.offer((WEATHER, HANDOFF), None)
    assert auto is not None and not auto.required and len(auto.tools) == 2
    names = [o.get("properties", {}) for o in tools.schema(auto)["oneOf"]]
    assert {"answer": {"type": "string"}} in names
    required = tools.offer((WEATHER, HANDOFF), "required")
    assert required is not None and len(tools.schema(required)["oneOf"]) == 2
    named = tools.offer((WEATHER, HANDOFF), NamedToolChoice("get_weather"))
    assert named is not None and named.tools == (WEATHER,)
    # One tool, no answer: the schema is that tool's call itself.
    assert tools.schema(named)["properties"]["name"] == {"const": "get_weather"}
    assert tools.schema(named)["properties"]["arguments"] == CITY


def test_a_choice_naming_an_unknown_tool_is_a_400() -> None:
    with pytest.raises(InvalidRequest) as caught:
        tools.offer((WEATHER,), NamedToolChoice("nope"))
    assert caught.value.param == "tool_choice"


def test_the_schema_compiles_to_a_llama_grammar() -> None:
    offer = tools.offer((WEATHER, HANDOFF), "auto")
    assert offer is not None
    gbnf = json_schema_to_gbnf(json.dumps(tools.schema(offer)))
    assert '"\\"get_weather\\""' in gbnf and '"\\"transfer_to_agent\\""' in gbnf
    LlamaGrammar.from_string(gbnf, verbose=False)


def test_parse_reads_a_call_an_answer_and_cut_off_text() -> None:
    call = tools.parse('{"name": "get_weather", "arguments": {"city": "Paris"}}')
    assert (call.answer, call.name) == (None, "get_weather")
    assert orjson.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id.startswith("call_")
    assert tools.parse('{"answer": "Sunny"}').answer == "Sunny"
    assert tools.parse('{"name": "get_wea').answer == '{"name": "get_wea'
    with pytest.raises(InternalError):
        tools.parse("[1]")


def test_wire_describes_the_tools_and_folds_calls_and_results() -> None:
    params = parse_chat(
        {
            "model": "m",
            "tools": [_tool("get_weather")],
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Paris?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "Sunny"},
            ],
        }
    )
    assert params.tools is not None and params.needs == ()
    system, user, assistant, result = params.messages
    assert system.role == "system" and system.content.startswith("Be brief.\n\n")
    assert "get_weather" in system.content and '"answer"' in system.content
    assert user.content == "Paris?"
    assert json.loads(assistant.content) == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert (result.role, result.content) == ("tool", "Sunny")


def test_tools_with_a_json_response_format_are_a_400() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat(
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [_tool("f")],
                "response_format": {"type": "json_object"},
            }
        )
    assert caught.value.param == "response_format"
