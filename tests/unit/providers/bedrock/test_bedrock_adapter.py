"""The Bedrock adapter against the fake Bedrock over loopback, every request SigV4-verified."""

from __future__ import annotations

import base64

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
from modelyard.providers.base import CallContext, ProviderSettings
from modelyard.providers.bedrock import BedrockProvider
from modelyard.providers.transport import Transport
from tests.fakes.bedrock_upstream import FakeBedrock

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
CTX = CallContext("req-1")
WEATHER = ToolSpec(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CLOCK = ToolSpec(
    "get_time",
    None,
    {"type": "object", "properties": {"zone": {"type": "string"}, "utc": {"type": "boolean"}}},
)
# A 1x1 transparent PNG.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
    )
).decode()


def user(text: str) -> Message:
    return Message("user", (TextPart(text),))


def ask(*messages: Message, **fields: object) -> ChatRequest:
    return ChatRequest("deployment", list(messages), **fields)  # type: ignore[arg-type]


async def collect(
    provider: BedrockProvider, request: ChatRequest, model: str = CLAUDE
) -> list[StreamEvent]:
    return [event async for event in provider.stream(request, model, CTX)]


async def test_plain_text(provider: BedrockProvider, fake: FakeBedrock) -> None:
    result = await provider.chat(ask(user("hello there")), CLAUDE, CTX)
    choice = result.choices[0]
    assert choice.message.text() == "echo: hello there"
    assert choice.finish_reason == "stop"
    assert result.upstream_model == CLAUDE
    assert result.upstream_id is not None and result.upstream_id.endswith(
        "-fake-4bed-8roc-k00000000000"
    )
    sent = fake.last_request
    # The model id is one percent-encoded path segment, exactly as boto3 sends it.
    assert sent.path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    assert sent.json == {"messages": [{"role": "user", "content": [{"text": "hello there"}]}]}
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIA")
    assert "x-amz-date" in sent.headers


async def test_system_and_inference_config(provider: BedrockProvider, fake: FakeBedrock) -> None:
    request = ask(
        Message("system", (TextPart("be brief"),)),
        user("hi"),
        max_tokens=50,
        temperature=0.2,
        top_p=0.9,
        stop=("END",),
    )
    result = await provider.chat(request, CLAUDE, CTX)
    assert result.choices[0].message.text() == "echo: hi"
    body = fake.last_request.json
    assert body["system"] == [{"text": "be brief"}]
    assert body["inferenceConfig"] == {
        "maxTokens": 50,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
    }


async def test_multi_turn(provider: BedrockProvider, fake: FakeBedrock) -> None:
    request = ask(
        user("first"),
        Message("assistant", (TextPart("echo: first"),)),
        user("second"),
        user("and third"),
    )
    result = await provider.chat(request, CLAUDE, CTX)
    assert result.choices[0].message.text() == "echo: second and third"
    turns = fake.last_request.json["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[2]["content"] == [{"text": "second"}, {"text": "and third"}]


async def test_tool_call_and_result_round_trip(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    first = ask(user("weather in Paris?"), tools=(WEATHER,), tool_choice="auto")
    result = await provider.chat(first, CLAUDE, CTX)
    message = result.choices[0].message
    assert result.choices[0].finish_reason == "tool_calls"
    [call] = message.tool_calls
    assert call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"city": "Paris"}
    config = fake.last_request.json["toolConfig"]
    assert config["toolChoice"] == {"auto": {}}
    assert WEATHER.parameters is not None
    assert config["tools"][0]["toolSpec"]["inputSchema"] == {"json": dict(WEATHER.parameters)}

    second = ask(
        user("weather in Paris?"),
        message,
        Message("tool", (TextPart("sunny, 21C"),), tool_call_id=call.id),
        tools=(WEATHER,),
    )
    final = await provider.chat(second, CLAUDE, CTX)
    assert final.choices[0].message.text() == "tool said: sunny, 21C"
    assert final.choices[0].finish_reason == "stop"
    turns = fake.last_request.json["messages"]
    assert turns[1]["content"][0]["toolUse"]["toolUseId"] == call.id
    assert turns[2]["content"] == [
        {"toolResult": {"toolUseId": call.id, "content": [{"text": "sunny, 21C"}]}}
    ]


async def test_follow_up_without_tools_declares_the_history_tools(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    call = ToolCall("tooluse_abc", "get_weather", '{"city": "Paris"}')
    request = ask(
        user("weather?"),
        Message("assistant", tool_calls=(call,)),
        Message("tool", (TextPart("rain"),), tool_call_id="tooluse_abc"),
        tool_choice="none",
    )
    result = await provider.chat(request, CLAUDE, CTX)
    assert result.choices[0].message.text() == "tool said: rain"
    assert fake.last_request.json["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"


async def test_parallel_tools(provider: BedrockProvider) -> None:
    request = ask(user("weather and time?"), tools=(WEATHER, CLOCK), tool_choice="required")
    result = await provider.chat(request, CLAUDE, CTX)
    calls = result.choices[0].message.tool_calls
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert orjson.loads(calls[1].arguments) == {"zone": "x", "utc": True}
    assert len({c.id for c in calls}) == 2


async def test_named_tool_choice(provider: BedrockProvider, fake: FakeBedrock) -> None:
    request = ask(user("time?"), tools=(WEATHER, CLOCK), tool_choice=NamedToolChoice("get_time"))
    result = await provider.chat(request, CLAUDE, CTX)
    assert [c.name for c in result.choices[0].message.tool_calls] == ["get_time"]
    assert fake.last_request.json["toolConfig"]["toolChoice"] == {"tool": {"name": "get_time"}}


async def test_streaming_text(provider: BedrockProvider, fake: FakeBedrock) -> None:
    events = await collect(provider, ask(user("stream me please")))
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(texts) > 1
    assert "".join(texts) == "echo: stream me please"
    assert isinstance(events[-2], UsageReport)
    assert events[-1] == Finished("stop")
    assert sum(isinstance(e, UsageReport) for e in events) == 1
    assert fake.last_request.path.endswith("%3A0/converse-stream")
    assert fake.last_request.headers["accept"] == "application/vnd.amazon.eventstream"


async def test_streaming_tool_arguments_reassemble(provider: BedrockProvider) -> None:
    request = ask(user("weather and time?"), tools=(WEATHER, CLOCK))
    events = await collect(provider, request)
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [d.name for d in deltas if d.name] == ["get_weather", "get_time"]
    assert {d.call_index for d in deltas} == {0, 1}
    arguments = {
        index: "".join(d.arguments for d in deltas if d.call_index == index) for index in (0, 1)
    }
    assert sum(1 for d in deltas if d.call_index == 0 and d.arguments) > 1  # really in pieces
    assert orjson.loads(arguments[0]) == {"city": "Paris"}
    assert orjson.loads(arguments[1]) == {"zone": "x", "utc": True}
    assert events[-1] == Finished("tool_calls")


async def test_image_input(provider: BedrockProvider, fake: FakeBedrock) -> None:
    message = Message("user", (TextPart("what is this"), ImagePart(f"data:image/png;base64,{PNG}")))
    result = await provider.chat(ask(message), CLAUDE, CTX)
    assert result.choices[0].message.text() == "echo: what is this"
    blocks = fake.last_request.json["messages"][0]["content"]
    assert blocks[1] == {"image": {"format": "png", "source": {"bytes": PNG}}}


async def test_image_url_is_refused_without_a_call(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    message = Message("user", (ImagePart("https://example.com/cat.png"),))
    with pytest.raises(UnsupportedCapability, match="image URLs"):
        await provider.chat(ask(message), CLAUDE, CTX)
    assert fake.requests == []


async def test_json_schema_output_through_a_forced_tool(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
    }
    request = ask(user("a city"), response_format=ResponseFormat("json_schema", schema, "place"))
    result = await provider.chat(request, CLAUDE, CTX)
    choice = result.choices[0]
    assert orjson.loads(choice.message.text()) == {"city": "Paris", "n": 1}
    assert choice.message.tool_calls == ()
    assert choice.finish_reason == "stop"
    assert fake.last_request.json["toolConfig"]["toolChoice"] == {"tool": {"name": "json_place"}}

    events = await collect(provider, request)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert orjson.loads(text) == {"city": "Paris", "n": 1}
    assert not any(isinstance(e, ToolCallDelta) for e in events)
    assert events[-1] == Finished("stop")


async def test_json_schema_output_native(fake: FakeBedrock, transport: Transport) -> None:
    settings = ProviderSettings(
        "br", "bedrock", base_url=fake.base_url, options={"structured_output": "native"}
    )
    provider = BedrockProvider(settings, transport)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    request = ask(user("a city"), response_format=ResponseFormat("json_schema", schema, "place"))
    result = await provider.chat(request, CLAUDE, CTX)
    assert orjson.loads(result.choices[0].message.text()) == {"city": "Paris"}
    text_format = fake.last_request.json["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema"
    assert orjson.loads(text_format["structure"]["jsonSchema"]["schema"]) == schema


async def test_usage_is_exact_and_inclusive(provider: BedrockProvider) -> None:
    request = ask(Message("system", (TextPart("one two"),)), user("three four five"))
    result = await provider.chat(request, "model-cache-hit", CTX)
    # Fake: inputTokens = 5 words (cache excluded, as on Bedrock); reads 1024, writes 256.
    assert result.usage == Usage(
        input_tokens=5 + 1024 + 256,
        output_tokens=4,
        cached_input_tokens=1024,
        cache_write_tokens=256,
    )
    events = await collect(provider, request, "model-cache-hit")
    [report] = [e for e in events if isinstance(e, UsageReport)]
    assert report.usage == result.usage


async def test_one_hour_cache_writes_are_read_from_cache_details(provider: BedrockProvider) -> None:
    request = ask(user("three four five"))
    result = await provider.chat(request, "model-cache-hit-1h", CTX)
    assert result.usage is not None
    assert (result.usage.cache_write_tokens, result.usage.cache_write_1h_tokens) == (256, 256)
    events = await collect(provider, request, "model-cache-hit-1h")
    [report] = [e for e in events if isinstance(e, UsageReport)]
    assert report.usage == result.usage


async def test_reasoning_comes_back_with_its_signature(provider: BedrockProvider) -> None:
    thinking = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    request = ask(user("think"), extra={"additionalModelRequestFields": thinking})
    result = await provider.chat(request, CLAUDE, CTX)
    message = result.choices[0].message
    assert message.text() == "echo: think"
    assert message.reasoning == "Let me think about that."
    assert message.reasoning_signature == "sig-fake-0001"

    events = await collect(provider, request)
    reasoning = [e for e in events if isinstance(e, ReasoningDelta)]
    assert "".join(e.text for e in reasoning) == "Let me think about that."
    assert reasoning[-1] == ReasoningDelta("", signature="sig-fake-0001")


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("fail-400", InvalidRequest, 400),
        ("fail-403", UpstreamError, 502),
        ("fail-404", UpstreamError, 502),
        ("fail-408", UpstreamTimeout, 504),
        ("fail-429", RateLimited, 429),
        ("fail-500", UpstreamError, 502),
        ("fail-503", UpstreamUnavailable, 503),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_error_statuses(
    provider: BedrockProvider, model: str, error: type[Exception], status: int, stream: bool
) -> None:
    with pytest.raises(error) as info:
        if stream:
            await collect(provider, ask(user("hi")), model)
        else:
            await provider.chat(ask(user("hi")), model, CTX)
    assert type(info.value) is error
    assert info.value.status == status  # type: ignore[attr-defined]
    if model == "fail-403":
        assert "access to the model" not in str(info.value)  # upstream text is not forwarded
    if model == "fail-400":
        assert "temperature" in str(info.value)


def _text(event: StreamEvent) -> str:
    assert isinstance(event, TextDelta | ReasoningDelta), event
    return event.text


async def test_exception_mid_stream(provider: BedrockProvider) -> None:
    seen: list[StreamEvent] = []
    with pytest.raises(RateLimited, match="Too many requests"):
        async for event in provider.stream(
            ask(user("one two three four")), "exception-mid-stream", CTX
        ):
            seen.append(event)
    assert [_text(e) for e in seen] == ["echo:", " one"]


async def test_disconnect_mid_stream(provider: BedrockProvider) -> None:
    seen: list[StreamEvent] = []
    with pytest.raises(UpstreamConnectionError):
        async for event in provider.stream(ask(user("one two three four")), "drop-mid-stream", CTX):
            seen.append(event)
    assert seen == [TextDelta("echo:"), TextDelta(" one")]


async def test_stream_ending_without_metadata(provider: BedrockProvider) -> None:
    seen: list[StreamEvent] = []
    with pytest.raises(UpstreamConnectionError, match="before messageStop and metadata"):
        async for event in provider.stream(ask(user("hi")), "truncated-stream", CTX):
            seen.append(event)
    assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == "echo: hi"
    assert not any(isinstance(e, UsageReport | Finished) for e in seen)


async def test_hang_times_out(fake: FakeBedrock, transport: Transport) -> None:
    settings = ProviderSettings(
        "br", "bedrock", base_url=fake.base_url, timeouts=CallTimeouts(first_token=0.3, total=5)
    )
    provider = BedrockProvider(settings, transport)
    with pytest.raises(UpstreamTimeout):
        await provider.chat(ask(user("hi")), "hang", CTX)


async def test_wrong_secret_key_is_rejected(
    provider: BedrockProvider, monkeypatch: pytest.MonkeyPatch, fake: FakeBedrock
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-the-fake-knows")
    with pytest.raises(UpstreamError) as info:
        await provider.chat(ask(user("hi")), CLAUDE, CTX)
    assert type(info.value) is UpstreamError
    assert info.value.status == 502
    assert "InvalidSignatureException" in str(info.value)
    assert "signature we calculated" not in str(info.value)


async def test_session_token_is_signed(
    fake: FakeBedrock, transport: Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FQoGZXIvYXdzEXAMPLETOKEN")
    provider = BedrockProvider(ProviderSettings("br", "bedrock", base_url=fake.base_url), transport)
    result = await provider.chat(ask(user("hi")), CLAUDE, CTX)
    assert result.choices[0].message.text() == "echo: hi"
    assert fake.last_request.headers["x-amz-security-token"] == "FQoGZXIvYXdzEXAMPLETOKEN"
    assert "x-amz-security-token" in fake.last_request.headers["authorization"]


async def test_bedrock_api_key_as_bearer(transport: Transport) -> None:
    with FakeBedrock(api_key="bedrock-api-key-test") as keyed:
        settings = ProviderSettings(
            "br", "bedrock", base_url=keyed.base_url, api_key="bedrock-api-key-test"
        )
        result = await BedrockProvider(settings, transport).chat(ask(user("hi")), CLAUDE, CTX)
        assert result.choices[0].message.text() == "echo: hi"
        assert keyed.last_request.headers["authorization"] == "Bearer bedrock-api-key-test"


async def test_inference_profile_arn_is_one_segment(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku"
    result = await provider.chat(ask(user("hi")), arn, CTX)
    assert result.choices[0].message.text() == "echo: hi"
    assert fake.last_request.model_id == arn
    assert "%2Fus.anthropic" in fake.last_request.path


async def test_titan_embeddings(provider: BedrockProvider, fake: FakeBedrock) -> None:
    titan = "amazon.titan-embed-text-v2:0"
    request = EmbeddingRequest("emb", ["one two", "three", "four five six"], dimensions=256)
    result = await provider.embed(request, titan, CTX)
    assert [len(v) for v in result.vectors] == [256, 256, 256]
    assert result.usage == Usage(input_tokens=6)
    assert result.upstream_model == titan
    invocations = fake.requests
    assert {r.path for r in invocations} == {"/model/amazon.titan-embed-text-v2%3A0/invoke"}
    bodies = sorted((r.json["inputText"], r.json["dimensions"]) for r in invocations)
    assert bodies == [("four five six", 256), ("one two", 256), ("three", 256)]
    # One call per input, and the vectors come back in the order of the inputs.
    alone = await provider.embed(EmbeddingRequest("emb", ["three"], dimensions=256), titan, CTX)
    assert alone.vectors[0] == result.vectors[1]
    default = await provider.embed(EmbeddingRequest("emb", ["three"]), titan, CTX)
    assert len(default.vectors[0]) == 1024
    assert "dimensions" not in fake.last_request.json


async def test_titan_dimensions_are_checked(provider: BedrockProvider, fake: FakeBedrock) -> None:
    with pytest.raises(InvalidRequest, match="dimensions"):
        await provider.embed(
            EmbeddingRequest("e", ["x"], dimensions=300), "amazon.titan-embed-text-v2:0", CTX
        )
    assert fake.requests == []


async def test_other_embedding_families_are_unsupported(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    with pytest.raises(UnsupportedCapability):
        await provider.embed(EmbeddingRequest("e", ["x"]), "cohere.embed-english-v3", CTX)
    assert fake.requests == []
