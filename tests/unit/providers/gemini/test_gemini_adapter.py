"""``GeminiProvider`` against the fake Gemini upstream, over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from tests.fakes.gemini_upstream import FakeGemini

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
from modelyard.providers.base import CallContext, ProviderSettings
from modelyard.providers.gemini import GeminiProvider
from modelyard.providers.registry import check_settings, provider_types
from modelyard.providers.transport import Transport

KEY = "AIza-unit-test-key"
CTX = CallContext("req-1")
MODEL = "gemini-2.5-flash"
WEATHER = ToolSpec(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CLOCK = ToolSpec("get_time", None, {"type": "object", "properties": {"utc": {"type": "boolean"}}})
WEATHER_CALL = ToolCall("call_from_elsewhere", "get_weather", '{"city": "Paris"}')
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5Er"
    "kJggg=="
)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=KEY) as server:
        yield server


@pytest.fixture
async def gem(fake: FakeGemini) -> AsyncIterator[GeminiProvider]:
    fake.clear()
    transport = Transport()
    settings = ProviderSettings(
        name="gem",
        type="gemini",
        base_url=fake.base_url,
        api_key=KEY,
        timeouts=CallTimeouts(connect=2, first_token=2, total=5),
    )
    yield GeminiProvider(settings, transport)
    await transport.aclose()


def user(text: str) -> Message:
    return Message("user", (TextPart(text),))


def ask(*messages: Message, **kw: object) -> ChatRequest:
    return ChatRequest("dep", list(messages), **kw)  # type: ignore[arg-type]


async def collect(
    gem: GeminiProvider, request: ChatRequest, model: str = MODEL
) -> list[StreamEvent]:
    return [event async for event in gem.stream(request, model, CTX)]


async def test_plain_text_with_system_instruction(gem, fake):
    request = ask(Message("system", (TextPart("be brief"),)), user("hello there"), max_tokens=50)
    result = await gem.chat(request, MODEL, CTX)
    assert result.choices[0].message.text() == "echo: hello there"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage == Usage(input_tokens=4, output_tokens=3)
    assert result.upstream_model == MODEL and result.upstream_id
    sent = fake.last_request
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent" and sent.query == ""
    assert sent.headers["x-goog-api-key"] == KEY
    assert "authorization" not in sent.headers
    assert sent.json["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert sent.json["generationConfig"] == {"maxOutputTokens": 50}


async def test_multi_turn(gem, fake):
    request = ask(user("one"), Message("assistant", (TextPart("echo: one"),)), user("two"))
    result = await gem.chat(request, MODEL, CTX)
    assert result.choices[0].message.text() == "echo: two"
    assert [c["role"] for c in fake.last_request.json["contents"]] == ["user", "model", "user"]


async def test_max_tokens_and_candidates(gem):
    result = await gem.chat(ask(user("a b c d e f"), max_tokens=2, n=2), MODEL, CTX)
    assert [c.index for c in result.choices] == [0, 1]
    assert all(c.message.text() == "echo: a" for c in result.choices)
    assert all(c.finish_reason == "length" for c in result.choices)


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-3-pro"])
async def test_tool_call_and_result_round_trip(gem, fake, model):
    first = await gem.chat(ask(user("weather in Paris?"), tools=(WEATHER,)), model, CTX)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_")
    assert (call.name, call.arguments) == ("get_weather", '{"city":"Paris"}')
    followup = ask(
        user("weather in Paris?"),
        choice.message,
        Message("tool", (TextPart('{"temp": 21}'),), tool_call_id=call.id),
        tools=(WEATHER,),
    )
    # gemini-3* refuses the follow-up unless the call's thought signature made the round trip.
    second = await gem.chat(followup, model, CTX)
    assert second.choices[0].message.text() == 'tool said: {"temp":21}'
    assert second.choices[0].finish_reason == "stop"
    sent = fake.last_request.json["contents"]
    assert sent[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}
    ]


async def test_lost_signature_is_refused_by_gemini_3(gem):
    request = ask(
        user("weather?"),
        Message("assistant", tool_calls=(WEATHER_CALL,)),
        Message("tool", (TextPart("sunny"),), tool_call_id=WEATHER_CALL.id),
        tools=(WEATHER,),
    )
    with pytest.raises(InvalidRequest, match="thought_signature"):
        await gem.chat(request, "gemini-3-pro", CTX)
    assert (await gem.chat(request, MODEL, CTX)).choices[0].message.text() == "tool said: sunny"


async def test_parallel_tool_calls(gem):
    result = await gem.chat(ask(user("both?"), tools=(WEATHER, CLOCK)), MODEL, CTX)
    calls = result.choices[0].message.tool_calls
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_weather", '{"city":"Paris"}'),
        ("get_time", '{"utc":true}'),
    ]
    assert len({c.id for c in calls}) == 2
    followup = ask(
        user("both?"),
        result.choices[0].message,
        *(
            Message("tool", (TextPart(t),), tool_call_id=c.id)
            for c, t in zip(calls, ("sun", "noon"), strict=True)
        ),
        tools=(WEATHER, CLOCK),
    )
    answer = await gem.chat(followup, MODEL, CTX)
    assert answer.choices[0].message.text() == "tool said: sun | noon"
    single = await gem.chat(
        ask(user("both?"), tools=(WEATHER, CLOCK), parallel_tool_calls=False), MODEL, CTX
    )
    assert [c.name for c in single.choices[0].message.tool_calls] == ["get_weather"]


async def test_streaming_text(gem, fake):
    events = await collect(gem, ask(user("one two three four five")))
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(texts) > 1 and "".join(texts) == "echo: one two three four five"
    assert events[-2:] == [UsageReport(Usage(input_tokens=5, output_tokens=6)), Finished("stop")]
    assert fake.last_request.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert fake.last_request.query == "alt=sse"
    assert fake.last_request.headers["accept"] == "text/event-stream"


async def test_streaming_tool_call(gem):
    events = await collect(gem, ask(user("weather?"), tools=(WEATHER, CLOCK)))
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [(c.call_index, c.name, c.arguments) for c in calls] == [
        (0, "get_weather", '{"city":"Paris"}'),
        (1, "get_time", '{"utc":true}'),
    ]
    assert all(c.id and c.id.startswith("call_") for c in calls)
    assert events[-1] == Finished("tool_calls")


async def test_thoughts_and_usage_exact(gem, fake):
    request = ask(user("why is the sky blue"), extra={"reasoning_effort": "low"})
    result = await gem.chat(request, MODEL, CTX)
    message = result.choices[0].message
    assert message.reasoning == "thinking about: why is the sky blue"
    assert message.text() == "echo: why is the sky blue"
    # 6 answer words + 7 thought words; output includes reasoning.
    assert result.usage == Usage(input_tokens=5, output_tokens=13, reasoning_tokens=7)
    assert fake.last_request.json["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 1024,
        "includeThoughts": True,
    }
    events = await collect(gem, request)
    assert isinstance(events[0], ReasoningDelta) and events[0].text.startswith("thinking about")
    assert UsageReport(result.usage) in events
    cached = await gem.chat(ask(user("a b c d e f g")), "cached-4", CTX)
    assert cached.usage == Usage(input_tokens=7, output_tokens=8, cached_input_tokens=4)


async def test_inline_image_and_url_image(gem, fake):
    image = ImagePart(f"data:image/png;base64,{PIXEL}")
    result = await gem.chat(ask(Message("user", (TextPart("what"), image))), MODEL, CTX)
    assert result.choices[0].message.text() == "echo: what"
    assert result.usage is not None and result.usage.input_tokens == 1 + 258
    part = fake.last_request.json["contents"][0]["parts"][1]
    assert part == {"inlineData": {"mimeType": "image/png", "data": PIXEL}}
    fake.clear()
    url = ask(Message("user", (ImagePart("https://example.com/cat.png"),)))
    with pytest.raises(UnsupportedCapability) as info:
        await gem.chat(url, MODEL, CTX)
    assert info.value.status == 400
    assert fake.requests == []  # refused before anything was sent


async def test_json_schema_output(gem, fake):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    request = ask(
        user("biggest city"), response_format=ResponseFormat("json_schema", schema, "c", True)
    )
    result = await gem.chat(request, MODEL, CTX)
    assert result.choices[0].message.text() == '{"city":"Paris","population":1}'
    config = fake.last_request.json["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}
    plain = await gem.chat(
        ask(user("hi"), response_format=ResponseFormat("json_object")), MODEL, CTX
    )
    assert plain.choices[0].message.text() == '{"answer":"echo: hi"}'


async def test_safety_blocks_are_content_filtered_answers(gem):
    for model in ("blocked-safety", "blocked-prompt"):
        result = await gem.chat(ask(user("something bad")), model, CTX)
        assert result.choices[0].finish_reason == "content_filter"
        assert result.choices[0].message.content == ()
        assert result.usage == Usage(input_tokens=2)
        events = await collect(gem, ask(user("something bad")), model)
        assert events == [UsageReport(Usage(input_tokens=2)), Finished("content_filter")]


async def test_upstream_400_is_the_clients_invalid_request(gem):
    with pytest.raises(InvalidRequest, match="invalid argument"):
        await gem.chat(ask(user("x")), "fail-400", CTX)
    with pytest.raises(InvalidRequest, match="invalid argument"):
        await collect(gem, ask(user("x")), "fail-400")


async def test_credentials_problems_hide_the_upstream_text(gem, fake):
    with pytest.raises(UpstreamError) as info:
        await gem.chat(ask(user("x")), "fail-403", CTX)
    assert type(info.value) is UpstreamError and info.value.status == 502
    assert KEY not in info.value.message
    settings = ProviderSettings(name="gem", type="gemini", base_url=fake.base_url, api_key="wrong")
    transport = Transport()
    try:
        with pytest.raises(UpstreamError) as info:
            await GeminiProvider(settings, transport).chat(ask(user("x")), MODEL, CTX)
    finally:
        await transport.aclose()
    assert info.value.status == 502 and "credentials" in info.value.message


async def test_429_carries_the_retry_delay(gem):
    with pytest.raises(RateLimited) as info:
        await gem.chat(ask(user("x")), "fail-429", CTX)
    assert info.value.retry_after == 13
    assert info.value.status == 429
    with pytest.raises(RateLimited):
        await collect(gem, ask(user("x")), "fail-429")


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("fail-500", UpstreamError, 502),
        ("fail-503", UpstreamUnavailable, 503),
        ("fail-504", UpstreamTimeout, 504),
        ("fail-404", UpstreamError, 502),
    ],
)
async def test_server_side_failures(gem, model, error, status):
    with pytest.raises(error) as info:
        await gem.chat(ask(user("x")), model, CTX)
    assert type(info.value) is error and info.value.status == status


async def test_mid_stream_failures_after_content(gem):
    for model, error in (
        ("drop-mid-stream", UpstreamConnectionError),
        ("truncated-stream", UpstreamConnectionError),
        ("error-mid-stream", UpstreamError),
    ):
        seen: list[StreamEvent] = []
        with pytest.raises(error):
            async for event in gem.stream(ask(user("one two three four five six")), model, CTX):
                seen.append(event)
        assert seen and isinstance(seen[0], TextDelta)
        assert not any(isinstance(e, Finished) for e in seen)
    with pytest.raises(UpstreamConnectionError):
        await gem.chat(ask(user("x")), "drop-mid-stream", CTX)


async def test_embeddings(gem, fake):
    texts = [f"text {i}" for i in range(120)]
    result = await gem.embed(
        EmbeddingRequest("e", texts, dimensions=16), "gemini-embedding-001", CTX
    )
    assert len(result.vectors) == 120 and all(len(v) == 16 for v in result.vectors)
    assert result.vectors[0] != result.vectors[1]
    assert result.usage is None
    batches = fake.requests
    assert [len(r.json["requests"]) for r in batches] == [100, 20]
    assert batches[1].path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert batches[1].json["requests"][0]["model"] == "models/gemini-embedding-001"
    again = await gem.embed(
        EmbeddingRequest("e", ["text 1"], dimensions=16), "gemini-embedding-001", CTX
    )
    assert again.vectors[0] == result.vectors[1]
    with pytest.raises(InvalidRequest):
        await gem.embed(EmbeddingRequest("e", [[1, 2]]), "gemini-embedding-001", CTX)


def test_options_are_checked():
    known = provider_types(entries=[])

    def problem(options: dict[str, str]) -> tuple[str, str] | None:
        settings = ProviderSettings("gem", "gemini", api_key=KEY, options=options)
        return check_settings(settings, known)

    assert problem({"thinking": "budget"}) is None
    assert problem({"thinking": "lots"}) == (
        "options.thinking",
        "Input should be 'auto', 'level' or 'budget'; got 'lots'",
    )
    assert problem({"region": "eu"}) == (
        "options.region",
        "unknown option 'region'; accepted: thinking",
    )


async def test_slow_answers_wait_and_silent_upstreams_time_out(fake):
    transport = Transport()

    def gemini(first_token: float) -> GeminiProvider:
        timeouts = CallTimeouts(connect=30, first_token=first_token, total=60)
        settings = ProviderSettings("gem", "gemini", fake.base_url, KEY, timeouts=timeouts)
        return GeminiProvider(settings, transport)

    # The slow answer takes longer than the silent one is given: only the limit ends a wait.
    # (A 100 ms answer under a 0.3 s limit on one provider left a busy machine 0.2 s.)
    patient, provider = gemini(first_token=30), gemini(first_token=0.3)
    try:
        result = await patient.chat(ask(user("hi")), "slow-300", CTX)
        assert result.choices[0].message.text() == "echo: hi"
        with pytest.raises(UpstreamTimeout):
            await provider.chat(ask(user("hi")), "hang", CTX)
        with pytest.raises(UpstreamTimeout):
            await collect(provider, ask(user("hi")), "hang")
    finally:
        await transport.aclose()
