"""Request building for the Messages API: every mapping decision, checked on the body."""

from __future__ import annotations

from typing import Any

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
from modelyard.core.errors import InvalidRequest
from modelyard.providers.anthropic.codec import (
    DEFAULT_MAX_TOKENS,
    BuildOptions,
    build_request,
)

OPTIONS = BuildOptions(provider="claude")
WEATHER = ToolSpec(
    "weather",
    "Current weather",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PNG = "iVBORw0KGgo="


def user(text: str) -> Message:
    return Message("user", (TextPart(text),))


def body_for(request: ChatRequest, options: BuildOptions = OPTIONS, **kw: Any) -> dict[str, Any]:
    return build_request(request, "claude-sonnet", options, stream=kw.get("stream", False)).body


def req(*messages: Message, **fields: Any) -> ChatRequest:
    return ChatRequest("deployment", list(messages), **fields)


def test_minimal_body_has_model_messages_and_default_max_tokens():
    body = body_for(req(user("hi")))
    assert body == {
        "model": "claude-sonnet",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": DEFAULT_MAX_TOKENS,
    }
    assert body_for(req(user("hi"), max_tokens=77))["max_tokens"] == 77
    assert (
        body_for(req(user("hi")), BuildOptions("claude", default_max_tokens=9))["max_tokens"] == 9
    )


def test_stream_flag():
    assert body_for(req(user("hi")), stream=True)["stream"] is True


def test_system_and_developer_messages_are_hoisted_in_order():
    body = body_for(
        req(
            Message("system", (TextPart("be brief"),)),
            user("hi"),
            Message("developer", (TextPart("use French"),)),
            user("again"),
        )
    )
    assert body["system"] == [
        {"type": "text", "text": "be brief"},
        {"type": "text", "text": "use French"},
    ]
    # The two user messages, now adjacent, become one turn.
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}],
        }
    ]


def test_multi_turn_and_merging_of_same_roles():
    body = body_for(
        req(
            user("a"),
            Message("assistant", (TextPart("b"),)),
            Message("assistant", (TextPart("c"),)),
            user("d"),
            Message("user", (TextPart(""),)),  # empty: dropped, never an empty block
        )
    )
    assert [t["role"] for t in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "b"},
        {"type": "text", "text": "c"},
    ]
    assert body["messages"][2]["content"] == [{"type": "text", "text": "d"}]


def test_images_base64_and_url():
    message = Message(
        "user",
        (
            TextPart("what is this"),
            ImagePart(f"data:image/png;base64,{PNG}", detail="high"),
            ImagePart("https://example.com/cat.jpg"),
        ),
    )
    content = body_for(req(message))["messages"][0]["content"]
    assert content[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert content[2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
    }


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("data:image/bmp;base64,AAAA", "image/bmp"),
        ("data:image/png,rawbytes", "base64"),
        ("data:image/png;base64,not base64!", "base64"),
        ("ftp://example.com/x.png", "http(s)"),
    ],
)
def test_bad_images_are_refused_naming_the_part(url, needle):
    with pytest.raises(InvalidRequest) as info:
        body_for(req(user("x"), Message("user", (ImagePart(url),))))
    assert info.value.param == "messages[1].content[0]"
    assert needle in info.value.message


def test_tools_and_tool_choice_mapping():
    bare = ToolSpec("now")
    strict = ToolSpec("s", None, {"type": "object", "properties": {}}, strict=True)
    body = body_for(req(user("x"), tools=(WEATHER, bare, strict)))
    assert body["tools"] == [
        {
            "name": "weather",
            "description": "Current weather",
            "input_schema": WEATHER.parameters,
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        {"name": "s", "input_schema": {"type": "object", "properties": {}}, "strict": True},
    ]
    assert "tool_choice" not in body

    def choice(value: Any, parallel: bool | None = None) -> Any:
        r = req(user("x"), tools=(WEATHER,), tool_choice=value, parallel_tool_calls=parallel)
        return body_for(r).get("tool_choice")

    assert choice("auto") == {"type": "auto"}
    assert choice("none") == {"type": "none"}
    assert choice("required") == {"type": "any"}
    assert choice(NamedToolChoice("weather")) == {"type": "tool", "name": "weather"}
    assert choice(None, False) == {"type": "auto", "disable_parallel_tool_use": True}
    assert choice("required", False) == {"type": "any", "disable_parallel_tool_use": True}
    assert choice("none", False) == {"type": "none"}
    assert choice(None, True) is None


def test_tool_choice_without_tools():
    assert "tool_choice" not in body_for(req(user("x"), tool_choice="auto"))
    with pytest.raises(InvalidRequest) as info:
        body_for(req(user("x"), tool_choice="required"))
    assert info.value.param == "tool_choice"


def tool_round_trip(arguments: str = '{"city": "Paris"}', call_id: str = "call_1") -> ChatRequest:
    return req(
        user("weather in Paris and Rome?"),
        Message(
            "assistant",
            (TextPart("Let me look."),),
            tool_calls=(
                ToolCall(call_id, "weather", arguments),
                ToolCall("call_2", "weather", '{"city": "Rome"}'),
            ),
        ),
        Message("tool", (TextPart("sunny"),), tool_call_id=call_id),
        Message("tool", (TextPart("rainy"),), tool_call_id="call_2"),
        user("thanks, and?"),
        tools=(WEATHER,),
    )


def test_tool_calls_and_results_round_trip():
    turns = body_for(tool_round_trip())["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Rome"}},
    ]
    # Both results in ONE user turn, before the user's own text.
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "rainy"},
        {"type": "text", "text": "thanks, and?"},
    ]


def test_tool_results_go_before_text_even_when_text_came_first():
    r = tool_round_trip()
    r.messages = [*r.messages[:2], user("also"), *r.messages[2:4]]
    content = body_for(r)["messages"][2]["content"]
    assert [b["type"] for b in content] == ["tool_result", "tool_result", "text"]


def test_empty_arguments_become_an_empty_input_and_ids_are_made_safe():
    turns = body_for(tool_round_trip(arguments="", call_id="call:1/x"))["messages"]
    assert turns[1]["content"][1]["input"] == {}
    assert turns[1]["content"][1]["id"] == "call_1_x"
    assert turns[2]["content"][0]["tool_use_id"] == "call_1_x"


@pytest.mark.parametrize("arguments", ['{"city": ', "[1, 2]"])
def test_bad_tool_arguments_name_the_message(arguments):
    with pytest.raises(InvalidRequest) as info:
        body_for(tool_round_trip(arguments=arguments))
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"
    assert "call_1" in info.value.message


def test_tool_message_without_call_id_is_refused():
    with pytest.raises(InvalidRequest) as info:
        body_for(req(user("x"), Message("tool", (TextPart("r"),))))
    assert info.value.param == "messages[1].tool_call_id"


def test_sampling_stop_and_user():
    body = body_for(
        req(user("x"), temperature=0.3, top_p=0.9, stop=("END", "STOP"), user="user-42")
    )
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END", "STOP"]
    assert body["metadata"] == {"user_id": "user-42"}


def test_temperature_above_one_is_refused():
    with pytest.raises(InvalidRequest) as info:
        body_for(req(user("x"), temperature=1.5))
    assert info.value.param == "temperature"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"seed": 7}, "seed"),
        ({"extra": {"logit_bias": {"50256": -100}}}, "logit_bias"),
        ({"extra": {"logprobs": True}}, "logprobs"),
        ({"extra": {"frequency_penalty": 0.5}}, "frequency_penalty"),
        ({"extra": {"presence_penalty": -1}}, "presence_penalty"),
        ({"extra": {"modalities": ["text", "audio"]}}, "modalities"),
    ],
)
def test_fields_claude_cannot_honour_are_refused_by_name(fields, param):
    with pytest.raises(InvalidRequest) as info:
        body_for(req(user("x"), **fields))
    assert info.value.param == param
    assert "'claude'" in info.value.message


def test_default_values_pass_and_bookkeeping_is_dropped_while_native_fields_pass_through():
    extra = {
        "presence_penalty": 0,
        "logprobs": False,
        "logit_bias": {},
        "store": True,
        "service_tier": "default",
        "top_k": 5,
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    }
    body = body_for(req(user("x"), n=1, extra=extra))
    for gone in ("presence_penalty", "logprobs", "logit_bias", "store", "service_tier", "n"):
        assert gone not in body
    assert body["top_k"] == 5
    assert body["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


def test_extras_never_override_what_the_codec_sets():
    body = body_for(req(user("x"), extra={"model": "other", "max_tokens": 1}))
    assert body["model"] == "claude-sonnet"
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS


def test_json_schema_through_a_forced_tool():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    r = req(user("x"), response_format=ResponseFormat("json_schema", schema, "place"))
    built = build_request(r, "m", OPTIONS, stream=False)
    assert built.json_tool == "json_place"
    assert built.body["tools"][-1]["name"] == "json_place"
    assert built.body["tools"][-1]["input_schema"] == schema
    assert built.body["tool_choice"] == {
        "type": "tool",
        "name": "json_place",
        "disable_parallel_tool_use": True,
    }


def test_json_object_uses_an_open_object_schema():
    built = build_request(
        req(user("x"), response_format=ResponseFormat("json_object")), "m", OPTIONS, stream=False
    )
    assert built.json_tool == "json_response"
    assert built.body["tools"][0]["input_schema"] == {"type": "object"}


def test_json_schema_with_client_tools_lets_the_model_choose():
    r = req(user("x"), tools=(WEATHER,), response_format=ResponseFormat("json_object"))
    built = build_request(r, "m", OPTIONS, stream=False)
    assert [t["name"] for t in built.body["tools"]] == ["weather", "json_response"]
    assert built.body["tool_choice"] == {"type": "any"}
    forced = req(
        user("x"),
        tools=(WEATHER,),
        tool_choice="required",
        response_format=ResponseFormat("json_object"),
    )
    built = build_request(forced, "m", OPTIONS, stream=False)
    assert built.json_tool is None
    assert built.body["tool_choice"] == {"type": "any"}


def test_json_schema_native_mode_uses_output_config():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    r = req(
        user("x"),
        response_format=ResponseFormat("json_schema", schema),
        extra={"output_config": {"effort": "low"}},
    )
    built = build_request(r, "m", BuildOptions("claude", structured_output="native"), stream=False)
    assert built.json_tool is None
    assert "tools" not in built.body
    assert built.body["output_config"] == {
        "effort": "low",
        "format": {"type": "json_schema", "schema": schema},
    }


def test_json_schema_must_be_an_object_and_cannot_use_a_tool_while_thinking():
    array = ResponseFormat("json_schema", {"type": "array"})
    with pytest.raises(InvalidRequest, match="root is an object"):
        body_for(req(user("x"), response_format=array))
    thinking = req(
        user("x"),
        response_format=ResponseFormat("json_object"),
        extra={"reasoning_effort": "low"},
    )
    with pytest.raises(InvalidRequest) as info:
        body_for(thinking)
    assert info.value.param == "response_format"


def test_reasoning_effort_becomes_a_thinking_budget():
    body = body_for(req(user("x"), extra={"reasoning_effort": "medium"}))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS + 8192
    assert "reasoning_effort" not in body
    capped = body_for(req(user("x"), max_tokens=6000, extra={"reasoning_effort": "high"}))
    assert capped["thinking"] == {"type": "enabled", "budget_tokens": 3000}
    assert capped["max_tokens"] == 6000
    assert "thinking" not in body_for(req(user("x"), extra={"reasoning_effort": "none"}))


def test_reasoning_effort_errors():
    with pytest.raises(InvalidRequest) as info:
        body_for(req(user("x"), max_tokens=1500, extra={"reasoning_effort": "low"}))
    assert info.value.param == "max_tokens"
    with pytest.raises(InvalidRequest) as info:
        body_for(req(user("x"), extra={"reasoning_effort": "extreme"}))
    assert info.value.param == "reasoning_effort"


def test_a_clients_own_thinking_object_wins_and_raises_the_default_max_tokens():
    own = {"type": "enabled", "budget_tokens": 2000}
    body = body_for(req(user("x"), extra={"thinking": own, "reasoning_effort": "high"}))
    assert body["thinking"] == own
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS + 2000
    adaptive = body_for(req(user("x"), extra={"thinking": {"type": "adaptive"}}))
    assert adaptive["thinking"] == {"type": "adaptive"}
    assert adaptive["max_tokens"] == DEFAULT_MAX_TOKENS


def test_signed_reasoning_goes_back_first_and_unsigned_reasoning_is_dropped():
    signed = Message(
        "assistant",
        (TextPart("ok"),),
        tool_calls=(ToolCall("t1", "weather", "{}"),),
        reasoning="I should call the tool.",
        reasoning_signature="sig==",
    )
    turns = body_for(req(user("x"), signed, Message("tool", (), tool_call_id="t1")))["messages"]
    assert turns[1]["content"][0] == {
        "type": "thinking",
        "thinking": "I should call the tool.",
        "signature": "sig==",
    }
    assert turns[2]["content"] == [{"type": "tool_result", "tool_use_id": "t1"}]
    unsigned = Message("assistant", (TextPart("ok"),), reasoning="from another vendor")
    turns = body_for(req(user("x"), unsigned))["messages"]
    assert turns[1]["content"] == [{"type": "text", "text": "ok"}]


def test_thinking_is_left_out_when_a_tool_turn_comes_back_without_its_signature():
    unsigned = Message("assistant", tool_calls=(ToolCall("t1", "weather", "{}"),))
    r = req(
        user("x"),
        unsigned,
        Message("tool", (TextPart("sunny"),), tool_call_id="t1"),
        extra={"reasoning_effort": "low"},
    )
    body = body_for(r)
    assert "thinking" not in body
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS
    signed = Message(
        "assistant", tool_calls=unsigned.tool_calls, reasoning="r", reasoning_signature="s"
    )
    r.messages[1] = signed
    assert body_for(r)["thinking"] == {"type": "enabled", "budget_tokens": 2048}
