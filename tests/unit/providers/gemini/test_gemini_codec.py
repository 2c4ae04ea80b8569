"""Core chat requests → Gemini ``generateContent`` bodies."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard.core.chat import (
    ChatRequest,
    ImagePart,
    Message,
    NamedToolChoice,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolSpec,
)
from modelyard.core.errors import InvalidRequest, UnsupportedCapability
from modelyard.providers.gemini import codec
from modelyard.providers.gemini.tool_ids import new_call_id, signature_of

WEATHER = ToolSpec(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def user(text: str) -> Message:
    return Message("user", (TextPart(text),))


def build(*messages: Message, model: str = "gemini-2.5-flash", **kw: Any) -> dict[str, Any]:
    request = ChatRequest("dep", list(messages), **kw)
    body: dict[str, Any] = orjson.loads(codec.build_body(request, model))
    return body


def test_system_and_developer_go_to_system_instruction_and_roles_map():
    body = build(
        Message("system", (TextPart("be brief"),)),
        user("hi"),
        Message("assistant", (TextPart("hello"),)),
        Message("developer", (TextPart("use French"),)),
        user("again"),
    )
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}, {"text": "use French"}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"text": "hello"}]},
        {"role": "user", "parts": [{"text": "again"}]},
    ]
    assert "generationConfig" not in body and "tools" not in body


def test_consecutive_turns_of_one_role_are_merged_and_empty_ones_dropped():
    body = build(
        user("one"), user("two"), Message("assistant"), Message("assistant", (TextPart("ok"),))
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
        {"role": "model", "parts": [{"text": "ok"}]},
    ]


def test_only_system_messages_is_an_invalid_request():
    with pytest.raises(InvalidRequest) as info:
        build(Message("system", (TextPart("x"),)))
    assert info.value.param == "messages"


def test_generation_config_fields():
    body = build(user("hi"), max_tokens=7, temperature=0.2, top_p=0.9, stop=("END",), seed=3, n=2)
    assert body["generationConfig"] == {
        "maxOutputTokens": 7,
        "temperature": 0.2,
        "topP": 0.9,
        "seed": 3,
        "candidateCount": 2,
        "stopSequences": ["END"],
    }


def test_tools_and_tool_choice_modes():
    body = build(user("w?"), tools=(WEATHER,), tool_choice="required")
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parametersJsonSchema": WEATHER.parameters,
                }
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    for choice, mode in (("auto", "AUTO"), ("none", "NONE")):
        assert build(user("w?"), tools=(WEATHER,), tool_choice=choice)["toolConfig"] == {
            "functionCallingConfig": {"mode": mode}
        }
    named = build(user("w?"), tools=(WEATHER,), tool_choice=NamedToolChoice("get_weather"))
    assert named["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }


def test_tool_choice_problems():
    with pytest.raises(InvalidRequest, match="not among the tools"):
        build(user("w?"), tools=(WEATHER,), tool_choice=NamedToolChoice("other"))
    with pytest.raises(InvalidRequest, match="no tools"):
        build(user("w?"), tool_choice="required")
    assert "toolConfig" not in build(user("w?"), tool_choice="auto")
    with pytest.raises(InvalidRequest) as info:
        build(user("w?"), tools=(ToolSpec("9lives"),))
    assert info.value.param == "tools[0].function.name"


def test_tool_call_round_trip_recovers_function_names_and_signatures():
    signed = new_call_id("ab+/cd==")
    body = build(
        user("weather in Paris and Rome?"),
        Message(
            "assistant",
            (TextPart("Let me check."),),
            tool_calls=(
                ToolCall(signed, "get_weather", '{"city": "Paris"}'),
                ToolCall("call_plain", "get_time", ""),
            ),
        ),
        Message("tool", (TextPart('{"temp": 21}'),), tool_call_id=signed),
        Message("tool", (TextPart("noon"),), tool_call_id="call_plain"),
        user("thanks"),
    )
    assert body["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "Let me check."},
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "ab+/cd==",
            },
            {"functionCall": {"name": "get_time", "args": {}}},
        ],
    }
    # Tool results and the next user message make one user turn, in order.
    assert body["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_time", "response": {"output": "noon"}}},
            {"text": "thanks"},
        ],
    }


def test_tool_result_for_an_unknown_call_names_the_message():
    with pytest.raises(InvalidRequest) as info:
        build(user("x"), Message("tool", (TextPart("1"),), tool_call_id="call_missing"))
    assert info.value.param == "messages[1].tool_call_id"
    assert "call_missing" in info.value.message
    # A legacy ``name`` on the tool message is enough.
    body = build(user("x"), Message("tool", (TextPart("[1]"),), tool_call_id="c", name="f"))
    assert body["contents"][0]["parts"][1] == {
        "functionResponse": {"name": "f", "response": {"output": [1]}}
    }


def test_bad_tool_call_arguments():
    call = ToolCall("c1", "f", "{not json")
    with pytest.raises(InvalidRequest) as info:
        build(user("x"), Message("assistant", tool_calls=(call,)))
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"
    with pytest.raises(InvalidRequest, match="JSON object"):
        build(user("x"), Message("assistant", tool_calls=(ToolCall("c1", "f", "[1]"),)))


def test_images():
    image = ImagePart("data:image/PNG;base64,iVBORw0KGgo=")
    body = build(Message("user", (TextPart("what is it?"), image)))
    assert body["contents"][0]["parts"][1] == {
        "inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}
    }
    with pytest.raises(UnsupportedCapability) as info:
        build(Message("user", (ImagePart("https://example.com/cat.png"),)), model="gemini-x")
    assert info.value.capability == "image URLs (send base64 data: URLs)"
    assert info.value.param == "messages[0].content[0].image_url.url"
    assert info.value.status == 400
    with pytest.raises(InvalidRequest, match="base64"):
        build(Message("user", (ImagePart("data:image/png,rawbytes"),)))


def test_json_modes():
    body = build(user("x"), response_format=ResponseFormat("json_object"))
    assert body["generationConfig"] == {"responseMimeType": "application/json"}
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "kind": {"const": "cat"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["kind"],
        "additionalProperties": False,
    }
    body = build(user("x"), response_format=ResponseFormat("json_schema", schema, "pet", True))
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": {
            "type": "object",
            "properties": {
                "kind": {"enum": ["cat"]},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["kind"],
            "additionalProperties": False,
        },
    }
    assert "generationConfig" not in build(user("x"), response_format=ResponseFormat("text"))


def test_strict_schemas_refuse_keywords_gemini_ignores():
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]+$"}}}
    with pytest.raises(InvalidRequest) as info:
        build(user("x"), response_format=ResponseFormat("json_schema", schema, "s", True))
    assert info.value.param == "response_format.json_schema.schema.properties.code.pattern"
    # Not strict: the schema is guidance and goes as it is.
    body = build(user("x"), response_format=ResponseFormat("json_schema", schema, "s", False))
    assert body["generationConfig"]["responseJsonSchema"] == schema
    strict_tool = ToolSpec("f", None, {"type": "object", "allOf": []}, strict=True)
    with pytest.raises(InvalidRequest) as info:
        build(user("x"), tools=(strict_tool,))
    assert info.value.param == "tools[0].function.parameters.allOf"


@pytest.mark.parametrize(
    ("model", "thinking", "effort", "expected"),
    [
        ("gemini-2.5-flash", "auto", "low", {"thinkingBudget": 1024, "includeThoughts": True}),
        ("gemini-2.5-pro", "auto", "none", {"thinkingBudget": 0}),
        ("gemini-3-pro", "auto", "high", {"thinkingLevel": "HIGH", "includeThoughts": True}),
        ("gemini-3-flash", "auto", "none", {"thinkingLevel": "MINIMAL"}),
        ("my-alias", "budget", "medium", {"thinkingBudget": 8192, "includeThoughts": True}),
        (
            "gemini-2.5-flash",
            "level",
            "minimal",
            {"thinkingLevel": "MINIMAL", "includeThoughts": True},
        ),
    ],
)
def test_reasoning_effort_becomes_thinking_config(model, thinking, effort, expected):
    request = ChatRequest("dep", [user("x")], extra={"reasoning_effort": effort})
    body = orjson.loads(codec.build_body(request, model, thinking))
    assert body["generationConfig"]["thinkingConfig"] == expected


def test_extra_fields():
    body = build(
        user("x"),
        extra={
            "top_k": 40,
            "frequency_penalty": 0.5,
            "presence_penalty": 0,
            "safety_settings": [
                {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
            ],
            # Set to nothing: asks for nothing.
            "logit_bias": {},
            "logprobs": False,
            "service_tier": None,
        },
    )
    assert body["generationConfig"] == {"topK": 40, "frequencyPenalty": 0.5, "presencePenalty": 0}
    assert body["safetySettings"] == [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
    ]
    for field, value in (("logit_bias", {"50256": -100}), ("logprobs", True), ("store", True)):
        with pytest.raises(InvalidRequest) as info:
            build(user("x"), extra={field: value})
        assert info.value.param == field
        assert field in info.value.message
    with pytest.raises(InvalidRequest, match="reasoning_effort must be one of"):
        build(user("x"), extra={"reasoning_effort": "max"})
    with pytest.raises(InvalidRequest, match="integer"):
        build(user("x"), extra={"top_k": 1.5})


def test_tool_ids_carry_signatures_in_an_id_safe_alphabet():
    call_id = new_call_id("Zm9v+/8=")
    assert call_id.startswith("call_")
    assert call_id.replace("_", "").replace("-", "").isalnum()
    assert signature_of(call_id) == "Zm9v+/8="
    plain = new_call_id(None)
    assert signature_of(plain) is None and len(plain) == len("call_") + 24
    assert signature_of("call_abc_ts_xyz") is None  # not one of ours
    assert signature_of(new_call_id("not base64!")) is None
