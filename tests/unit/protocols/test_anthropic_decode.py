import orjson
import pytest

from modelyard.core.chat import CacheMark, ImagePart, Message, NamedToolChoice, TextPart, ToolCall
from modelyard.core.errors import InvalidRequest
from modelyard.protocols.anthropic.decode import (
    decode_count_tokens,
    decode_messages,
    read_headers,
)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"


def _body(**kw: object) -> dict[str, object]:
    return {
        "model": "m",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
        **kw,
    }


def _error(body) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        decode_messages(body)
    return info.value


def test_minimal_request():
    req = decode_messages(_body())
    assert req.model == "m" and req.max_tokens == 64
    assert req.messages == [Message("user", (TextPart("hi"),))]
    assert not req.stream and req.extra == {}


def test_sampling_tools_and_metadata():
    req = decode_messages(
        _body(
            stream=True,
            temperature=0.2,
            top_p=0.9,
            top_k=40,
            stop_sequences=["END", "STOP"],
            metadata={"user_id": "u-1"},
            tools=[
                {
                    "name": "get_weather",
                    "description": "Weather",
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
                    "cache_control": {"type": "ephemeral"},
                },
                {"type": "custom", "name": "other", "input_schema": {"type": "object"}},
            ],
            tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
            thinking={"type": "enabled", "budget_tokens": 2048},
            service_tier="auto",
        )
    )
    assert req.stream and req.include_usage
    assert (req.temperature, req.top_p) == (0.2, 0.9)
    assert req.stop == ("END", "STOP")
    assert req.user == "u-1"
    assert [t.name for t in req.tools] == ["get_weather", "other"]
    assert req.tools[0].parameters == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
    }
    assert req.tool_choice == NamedToolChoice("get_weather")
    assert req.parallel_tool_calls is False
    assert req.extra == {
        "top_k": 40,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "service_tier": "auto",
    }


@pytest.mark.parametrize(
    ("choice", "core", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
        ({"type": "auto", "disable_parallel_tool_use": False}, "auto", None),
        ({"type": "none"}, "none", None),
    ],
)
def test_tool_choice_modes(choice, core, parallel):
    req = decode_messages(_body(tool_choice=choice))
    assert req.tool_choice == core and req.parallel_tool_calls is parallel


def test_system_string_and_blocks_lead_the_conversation():
    req = decode_messages(_body(system="be brief"))
    assert req.messages[0] == Message("system", (TextPart("be brief"),))
    blocks = [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two", "cache_control": {"type": "ephemeral"}},
    ]
    req = decode_messages(_body(system=blocks))
    assert req.messages[0] == Message("system", (TextPart("one"), TextPart("two", CacheMark())))
    assert len(decode_messages(_body(system="")).messages) == 1


def test_images_base64_and_url():
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.test/a.jpg"}},
        {"type": "text", "text": "what is this?"},
    ]
    req = decode_messages(_body(messages=[{"role": "user", "content": content}]))
    assert req.messages[0].content == (
        ImagePart(f"data:image/png;base64,{PNG}"),
        ImagePart("https://example.test/a.jpg"),
        TextPart("what is this?"),
    )


def test_tool_round_trip_turns():
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "need a tool", "signature": "sig-1"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "w", "input": {"_raw": "{bad"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and hurry"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "bad input"}],
                    "is_error": True,
                },
            ],
        },
    ]
    req = decode_messages(_body(messages=messages))
    assistant = req.messages[1]
    assert assistant.role == "assistant"
    assert assistant.content == (TextPart("Let me check."),)
    assert assistant.reasoning == "need a tool" and assistant.reasoning_signature == "sig-1"
    assert assistant.tool_calls == (
        ToolCall("toolu_1", "w", '{"city":"Paris"}'),
        ToolCall("toolu_2", "w", "{bad"),  # the encoder's wrapping of bad JSON, unwrapped
    )
    assert orjson.loads(assistant.tool_calls[0].arguments) == {"city": "Paris"}
    # Tool results answer the previous turn, so they come before the user's own words.
    assert [(m.role, m.tool_call_id) for m in req.messages[2:]] == [
        ("tool", "toolu_1"),
        ("tool", "toolu_2"),
        ("user", None),
    ]
    assert req.messages[2].content == (TextPart("sunny"),)
    assert req.messages[3].content == (TextPart("Error: bad input"),)
    assert req.messages[4].content == (TextPart("and hurry"),)


def test_tool_result_without_content_and_with_image():
    content = [
        {"type": "tool_result", "tool_use_id": "t1"},
        {
            "type": "tool_result",
            "tool_use_id": "t2",
            "is_error": True,
            "content": [
                {"type": "image", "source": {"type": "url", "url": "https://example.test/x.png"}}
            ],
        },
    ]
    req = decode_messages(_body(messages=[{"role": "user", "content": content}]))
    assert req.messages[0] == Message("tool", (), tool_call_id="t1")
    assert req.messages[1].content == (
        TextPart("Error:"),
        ImagePart("https://example.test/x.png"),
    )


def test_disabled_thinking_and_nulls_are_not_sent():
    req = decode_messages(_body(thinking={"type": "disabled"}, top_k=None, container=None))
    assert req.extra == {}


def test_count_tokens_needs_no_max_tokens_and_never_streams():
    body = _body(stream=True)
    del body["max_tokens"]
    req = decode_count_tokens(body)
    assert req.max_tokens is None and not req.stream


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens", "required"),
        (_body(max_tokens=0), "max_tokens", "at least 1"),
        (_body(messages=[]), "messages", "at least one"),
        (_body(temperature=1.5), "temperature", "at most 1"),
        (_body(messages=[{"role": "tool", "content": "x"}]), "messages[0].role", "'system'"),
        (_body(messages=[{"role": "system", "content": []}]), "messages[0].content", "empty"),
        (
            _body(system=[{"type": "text", "text": "s", "cache_control": {"type": "forever"}}]),
            "system[0].cache_control.type",
            "ephemeral",
        ),
        (
            _body(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "text",
                                "text": "x",
                                "cache_control": {"type": "ephemeral", "ttl": "9h"},
                            }
                        ],
                    }
                ]
            ),
            "messages[0].content[0].cache_control.ttl",
            "5m, 1h",
        ),
        (_body(messages=[{"role": "user", "content": []}]), "messages[0].content", "at least"),
        (_body(messages=[{"role": "user", "content": 5}]), "messages[0].content", "string"),
        (
            _body(
                messages=[
                    {"role": "user", "content": "x"},
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/bmp",
                                    "data": "x",
                                },
                            }
                        ],
                    },
                ]
            ),
            "messages[1].content[0].source.media_type",
            "image/png",
        ),
        (
            _body(messages=[{"role": "user", "content": [{"type": "video", "source": {}}]}]),
            "messages[0].content[0].type",
            "accepted: text, image, document, tool_result",
        ),
        (
            _body(
                messages=[
                    {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}
                ]
            ),
            "messages[0].content[0].type",
            "assistant",
        ),
        (
            _body(
                messages=[
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "x"}],
                    }
                ]
            ),
            "messages[0].content[0].input",
            "object",
        ),
        (
            _body(messages=[{"role": "user", "content": [{"type": "tool_result"}]}]),
            "messages[0].content[0].tool_use_id",
            "required",
        ),
        (_body(system=[{"type": "image"}]), "system[0].type", "'text'"),
        (_body(tools=[{"name": "f"}]), "tools[0].input_schema", "required"),
        (
            _body(tools=[{"type": "mystery_20250305", "name": "m"}]),
            "tools[0].type",
            "web_search_*",
        ),
        (_body(tool_choice={"type": "tool"}), "tool_choice.name", "required"),
        (_body(tool_choice={"type": "some"}), "tool_choice.type", "auto, any, tool, none"),
        (_body(stop_sequences=["a", 1]), "stop_sequences[1]", "string"),
        (_body(metadata={"user_id": 5}), "metadata.user_id", "string"),
        (_body(top_k=-1), "top_k", "at least 0"),
        (_body(thinking={"type": "enabled"}), "thinking.budget_tokens", "required"),
        (_body(thinking={"type": "maybe"}), "thinking.type", "enabled"),
    ],
)
def test_errors_name_the_field(body, param, fragment):
    err = _error(body)
    assert err.param == param
    assert err.message.startswith(f"{param}: ")
    assert fragment in err.message


def test_a_system_turn_inside_messages_stays_where_it_stands():
    """Claude Code sends mid-conversation system turns under non-Claude model names."""
    turns = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "next"},
        {"role": "system", "content": [{"type": "text", "text": "now be terse"}]},
    ]
    req = decode_messages(_body(system="lead", messages=turns))
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "user", "system"]
    assert req.messages[-1] == Message("system", (TextPart("now be terse"),))


def test_cache_breakpoints_are_carried_on_parts_tools_and_tool_results():
    mark = {"type": "ephemeral"}
    turns = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": "ok",
                    "cache_control": mark,
                },
                {"type": "text", "text": "and", "cache_control": {**mark, "ttl": "1h"}},
            ],
        },
    ]
    tools = [{"name": "f", "input_schema": {"type": "object"}, "cache_control": mark}]
    req = decode_messages(_body(messages=turns, tools=tools))
    tool_message, user = req.messages[-2], req.messages[-1]
    assert tool_message.role == "tool" and tool_message.cache == CacheMark()
    assert user.content == (TextPart("and", CacheMark("1h")),)
    assert req.tools[0].cache == CacheMark()


def test_server_tools_travel_whole_as_native_tools():
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    bash = {"type": "bash_20250124", "name": "bash"}
    req = decode_messages(_body(tools=[search, bash]))
    assert [(t.name, t.native) for t in req.tools] == [("web_search", search), ("bash", bash)]
    assert req.extra_origin == "anthropic"


def test_the_beta_header_becomes_the_requests_betas():
    req = decode_messages(_body())
    headers = {"anthropic-beta": "prompt-caching-2024-07-31, mid-conversation-system-2026-04-07"}
    read_headers(req, headers.get)
    assert req.betas == ("prompt-caching-2024-07-31", "mid-conversation-system-2026-04-07")
    with pytest.raises(InvalidRequest) as info:
        read_headers(req, {"anthropic-beta": "bad name;drop"}.get)
    assert info.value.param == "anthropic-beta"


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([{"role": "user", "content": "x"}, []], "messages[1]: must be an object, got an array"),
        ([{"role": "user", "content": "x"}, {"content": "y"}], "messages[1].role: is required"),
        (
            [{"role": "user", "content": [{"type": "text", "text": "a", "cache_control": {}}]}],
            "messages[0].content[0].cache_control.type: is required",
        ),
        ([{"role": "system", "content": ""}], "messages[0].content: must not be empty"),
    ],
)
def test_errors_name_the_turns_field_whole(messages, message):
    with pytest.raises(InvalidRequest) as info:
        decode_messages({"model": "m", "max_tokens": 5, "messages": messages})
    assert info.value.message == message
    assert info.value.param == message.split(":")[0]
