"""The Anthropic adapter against the fake Messages API over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from tests.fakes.anthropic_upstream import FakeAnthropic

from modelyard.core.chat import (
    ChatRequest,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
)
from modelyard.core.embeddings import EmbeddingRequest
from modelyard.core.errors import (
    InvalidRequest,
    RateLimited,
    UnsupportedCapability,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from modelyard.core.events import (
    Finished,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from modelyard.core.timeouts import CallTimeouts
from modelyard.providers.anthropic import AnthropicProvider
from modelyard.providers.base import CallContext, ProviderSettings
from modelyard.providers.transport import Transport

KEY = "sk-ant-test-key"
CTX = CallContext("req-1")
WEATHER = ToolSpec(
    "weather", "Weather now", {"type": "object", "properties": {"city": {"type": "string"}}}
)
CLOCK = ToolSpec(
    "clock", "Time now", {"type": "object", "properties": {"utc": {"type": "boolean"}}}
)
PNG = "iVBORw0KGgo="


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def _forget(fake: FakeAnthropic) -> None:
    fake.clear()


@pytest.fixture
async def provider(fake: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    transport = Transport()
    settings = ProviderSettings(
        name="claude", type="anthropic", base_url=fake.base_url, api_key=KEY
    )
    yield AnthropicProvider(settings, transport)
    await transport.aclose()


def user(text: str) -> Message:
    return Message("user", (TextPart(text),))


def ask(*messages: Message, **fields: Any) -> ChatRequest:
    return ChatRequest("claude", list(messages), **fields)


async def collect(provider: AnthropicProvider, request: ChatRequest, model: str = "claude-x"):
    return [event async for event in provider.stream(request, model, CTX)]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def calls_of(events: list[StreamEvent]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            call = calls.setdefault(e.call_index, {"id": "", "name": "", "arguments": ""})
            call["id"] = e.id or call["id"]
            call["name"] = e.name or call["name"]
            call["arguments"] += e.arguments
    return calls


async def test_plain_text_and_wire_headers(provider, fake):
    result = await provider.chat(ask(user("hello there")), "claude-x", CTX)
    assert result.choices[0].message.text() == "echo: hello there"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage == Usage(input_tokens=2, output_tokens=3)
    assert result.upstream_id.startswith("msg_")
    sent = fake.last_request
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json["max_tokens"] == 4096


async def test_system_and_multi_turn(provider, fake):
    request = ask(
        Message("system", (TextPart("You are terse."),)),
        user("first"),
        Message("assistant", (TextPart("ok"),)),
        user("second question"),
    )
    result = await provider.chat(request, "claude-x", CTX)
    assert result.choices[0].message.text() == "echo: second question"
    body = fake.last_request.json
    assert body["system"] == [{"type": "text", "text": "You are terse."}]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


async def test_tool_call_and_result_round_trip(provider, fake):
    first = await provider.chat(ask(user("weather?"), tools=(WEATHER,)), "claude-x", CTX)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.name == "weather"
    assert orjson.loads(call.arguments) == {"city": "Paris"}
    follow_up = ask(
        user("weather?"),
        choice.message,
        Message("tool", (TextPart("sunny, 21C"),), tool_call_id=call.id),
        tools=(WEATHER,),
    )
    second = await provider.chat(follow_up, "claude-x", CTX)
    assert second.choices[0].message.text() == "tool said: sunny, 21C"
    assert fake.last_request.json["messages"][2]["content"][0]["type"] == "tool_result"


async def test_parallel_tools_and_disabling_them(provider, fake):
    both = await provider.chat(ask(user("now?"), tools=(WEATHER, CLOCK)), "claude-x", CTX)
    assert [c.name for c in both.choices[0].message.tool_calls] == ["weather", "clock"]
    one = await provider.chat(
        ask(user("now?"), tools=(WEATHER, CLOCK), parallel_tool_calls=False), "claude-x", CTX
    )
    assert [c.name for c in one.choices[0].message.tool_calls] == ["weather"]
    assert fake.last_request.json["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }
    results = [
        Message("tool", (TextPart(r),), tool_call_id=c.id)
        for c, r in zip(both.choices[0].message.tool_calls, ("sunny", "noon"), strict=True)
    ]
    follow_up = ask(user("now?"), both.choices[0].message, *results, tools=(WEATHER, CLOCK))
    answer = await provider.chat(follow_up, "claude-x", CTX)
    assert answer.choices[0].message.text() == "tool said: sunny | noon"
    assert len(fake.last_request.json["messages"]) == 3  # both results in one user turn


async def test_streaming_text(provider, fake):
    events = await collect(provider, ask(user("stream me please")))
    assert text_of(events) == "echo: stream me please"
    assert sum(isinstance(e, TextDelta) for e in events) > 1
    assert events[-2:] == [
        UsageReport(Usage(input_tokens=3, output_tokens=4)),
        Finished("stop"),
    ]
    assert fake.last_request.json["stream"] is True
    assert fake.last_request.headers["accept"] == "text/event-stream"


async def test_streaming_tool_arguments_are_reassembled(provider):
    events = await collect(provider, ask(user("now?"), tools=(WEATHER, CLOCK)))
    calls = calls_of(events)
    assert sorted(calls) == [0, 1]
    assert calls[0]["name"] == "weather"
    assert orjson.loads(calls[0]["arguments"]) == {"city": "Paris"}
    assert orjson.loads(calls[1]["arguments"]) == {"utc": True}
    assert calls[0]["id"].startswith("toolu_")
    assert sum(isinstance(e, ToolCallDelta) and e.call_index == 0 for e in events) > 2
    assert events[-1] == Finished("tool_calls")


async def test_images_reach_the_upstream_in_its_shape(provider, fake):
    message = Message(
        "user",
        (
            TextPart("describe"),
            ImagePart(f"data:image/png;base64,{PNG}"),
            ImagePart("https://example.com/cat.jpg"),
        ),
    )
    result = await provider.chat(ask(message), "claude-x", CTX)
    assert result.choices[0].message.text() == "echo: describe"
    content = fake.last_request.json["messages"][0]["content"]
    assert content[1]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG}
    assert content[2]["source"] == {"type": "url", "url": "https://example.com/cat.jpg"}


async def test_json_schema_output(provider, fake):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    }
    request = ask(user("plan"), response_format=ResponseFormat("json_schema", schema, "plan"))
    result = await provider.chat(request, "claude-x", CTX)
    assert orjson.loads(result.choices[0].message.text()) == {"city": "Paris", "days": 1}
    assert result.choices[0].message.tool_calls == ()
    assert result.choices[0].finish_reason == "stop"
    assert fake.last_request.json["tool_choice"]["name"] == "json_plan"
    events = await collect(provider, request)
    assert orjson.loads(text_of(events)) == {"city": "Paris", "days": 1}
    assert not calls_of(events)
    assert events[-1] == Finished("stop")


async def test_usage_in_stream_is_exact_with_cache_tokens(provider):
    request = ask(
        Message("system", (TextPart("you are a helpful assistant"),)),
        user("hello there"),
        extra={"cache_control": {"type": "ephemeral"}},
    )
    first = await collect(provider, request)
    second = await collect(provider, request)
    reports = [e for e in first + second if isinstance(e, UsageReport)]
    assert reports == [
        UsageReport(Usage(input_tokens=7, output_tokens=3, cache_write_tokens=7)),
        UsageReport(Usage(input_tokens=7, output_tokens=3, cached_input_tokens=7)),
    ]
    assert isinstance(first[-2], UsageReport)


async def test_one_hour_cache_writes_are_kept_whole_and_streamed(provider):
    marked = {"type": "ephemeral", "ttl": "1h"}
    request = ask(
        Message("system", (TextPart("you are a careful assistant"),)),
        user("hello there"),
        extra={"cache_control": marked},
    )
    answer = await provider.chat(request, "claude-x", CTX)
    assert answer.usage == Usage(
        input_tokens=7, output_tokens=3, cache_write_tokens=7, cache_write_1h_tokens=7
    )
    other = ask(
        Message("system", (TextPart("you are a patient assistant"),)),
        user("hello there"),
        extra={"cache_control": marked},
    )
    events = await collect(provider, other)
    [report] = [e for e in events if isinstance(e, UsageReport)]
    assert report.usage == answer.usage


async def test_thinking_round_trip_with_tools(provider, fake):
    request = ask(user("weather?"), tools=(WEATHER,), extra={"reasoning_effort": "low"})
    events = await collect(provider, request)
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    signatures = [e.signature for e in events if isinstance(e, ReasoningDelta) and e.signature]
    assert reasoning == "Let me think about: weather?"
    assert len(signatures) == 1
    assert fake.last_request.json["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    call = calls_of(events)[0]
    assistant = Message(
        "assistant",
        tool_calls=(ToolCall(call["id"], call["name"], call["arguments"]),),
        reasoning=reasoning,
        reasoning_signature=signatures[0],
    )
    result_message = Message("tool", (TextPart("sunny"),), tool_call_id=call["id"])
    follow_up = ask(user("weather?"), assistant, result_message, **_thinking_tools())
    answer = await provider.chat(follow_up, "claude-x", CTX)
    assert answer.choices[0].message.text() == "tool said: sunny"
    assert answer.choices[0].message.reasoning_signature
    sent = fake.last_request.json["messages"][1]["content"][0]
    assert sent == {"type": "thinking", "thinking": reasoning, "signature": signatures[0]}
    # Sending the thinking back altered is what the real API refuses; the fake does too.
    assistant.reasoning_signature = "forged"
    with pytest.raises(InvalidRequest, match="signature"):
        await provider.chat(follow_up, "claude-x", CTX)


def _thinking_tools() -> dict[str, Any]:
    return {"tools": (WEATHER,), "extra": {"reasoning_effort": "low"}}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("fail-400", InvalidRequest),
        ("fail-429", RateLimited),
        ("fail-500", UpstreamError),
        ("fail-529", UpstreamUnavailable),
    ],
)
async def test_upstream_errors(provider, model, error, stream):
    with pytest.raises(error) as info:
        if stream:
            await collect(provider, ask(user("x")), model)
        else:
            await provider.chat(ask(user("x")), model, CTX)
    assert type(info.value) is error
    if error is RateLimited:
        assert info.value.retry_after == 2
    assert "upstream request id req_01" in info.value.message  # for the operator's support case


async def test_wrong_key_is_a_gateway_problem(fake):
    transport = Transport()
    settings = ProviderSettings("claude", "anthropic", base_url=fake.base_url, api_key="bad")
    try:
        with pytest.raises(UpstreamError) as info:
            await AnthropicProvider(settings, transport).chat(ask(user("x")), "claude-x", CTX)
    finally:
        await transport.aclose()
    assert info.value.status == 502
    assert "x-api-key" not in info.value.message


async def test_error_event_mid_stream(provider):
    seen: list[StreamEvent] = []
    with pytest.raises(UpstreamUnavailable, match="Overloaded"):
        async for event in provider.stream(
            ask(user("one two three four")), "error-mid-stream", CTX
        ):
            seen.append(event)
    assert text_of(seen) == "echo: one"


async def test_disconnect_mid_stream(provider):
    seen: list[StreamEvent] = []
    with pytest.raises(UpstreamConnectionError):
        async for event in provider.stream(ask(user("one two three four")), "drop-mid-stream", CTX):
            seen.append(event)
    assert seen  # content had already arrived


async def test_count_tokens(provider, fake):
    request = ask(Message("system", (TextPart("be kind"),)), user("a b c"), max_tokens=5)
    assert await provider.count_tokens(request, "claude-x", CTX) == 5
    assert fake.last_request.path == "/v1/messages/count_tokens"
    assert "max_tokens" not in fake.last_request.json


async def test_embeddings_are_unsupported(provider, fake):
    with pytest.raises(UnsupportedCapability):
        await provider.embed(EmbeddingRequest("e", ["x"]), "claude-x", CTX)
    assert not fake.requests


async def test_a_base_url_ending_in_v1_is_not_doubled(fake):
    transport = Transport()
    settings = ProviderSettings("claude", "anthropic", base_url=f"{fake.base_url}/v1/", api_key=KEY)
    try:
        await AnthropicProvider(settings, transport).chat(ask(user("x")), "claude-x", CTX)
    finally:
        await transport.aclose()
    assert fake.last_request.path == "/v1/messages"


def test_options_are_checked():
    assert AnthropicProvider.Options.model_validate({"default_max_tokens": 1024})
    with pytest.raises(ValidationError) as caught:
        AnthropicProvider.Options.model_validate(
            {"default_max_tokens": 0, "structured_output": "magic", "nope": 1}
        )
    problems = {err["loc"][0] for err in caught.value.errors()}
    assert problems == {"default_max_tokens", "structured_output", "nope"}


async def test_a_stream_that_ends_without_message_stop(provider):
    with pytest.raises(UpstreamConnectionError, match="message_stop"):
        await collect(provider, ask(user("x")), "no-message-stop")


async def test_a_silent_upstream_times_out(fake):
    transport = Transport()
    timeouts = CallTimeouts(first_token=0.2, total=5)
    settings = ProviderSettings("claude", "anthropic", fake.base_url, KEY, timeouts=timeouts)
    try:
        with pytest.raises(UpstreamTimeout):
            await AnthropicProvider(settings, transport).chat(ask(user("x")), "hang", CTX)
    finally:
        await transport.aclose()


async def test_tool_loop_with_thinking_from_a_client_that_drops_signatures(provider, fake):
    first = await provider.chat(ask(user("weather?"), **_thinking_tools()), "claude-x", CTX)
    (call,) = first.choices[0].message.tool_calls
    stripped = Message("assistant", tool_calls=(call,))  # what an OpenAI client sends back
    follow_up = ask(
        user("weather?"),
        stripped,
        Message("tool", (TextPart("sunny"),), tool_call_id=call.id),
        **_thinking_tools(),
    )
    answer = await provider.chat(follow_up, "claude-x", CTX)
    assert answer.choices[0].message.text() == "tool said: sunny"
    assert "thinking" not in fake.last_request.json
