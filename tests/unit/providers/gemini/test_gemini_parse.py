"""Gemini responses, stream chunks, errors and embeddings → core."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard.core.chat import Usage
from modelyard.core.embeddings import EmbeddingRequest
from modelyard.core.errors import (
    InvalidRequest,
    RateLimited,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from modelyard.core.events import Finished, ReasoningDelta, TextDelta, ToolCallDelta, UsageReport
from modelyard.providers.gemini.embeddings import embedding_bodies, parse_embeddings
from modelyard.providers.gemini.errors import classify_error
from modelyard.providers.gemini.response import parse_response, parse_usage
from modelyard.providers.gemini.stream import StreamState
from modelyard.providers.gemini.tool_ids import signature_of

LABEL = "provider 'gem'"
USAGE = {
    "promptTokenCount": 100,
    "candidatesTokenCount": 20,
    "thoughtsTokenCount": 30,
    "cachedContentTokenCount": 60,
    "toolUsePromptTokenCount": 5,
    "totalTokenCount": 155,
}


def test_usage_is_inclusive():
    assert parse_usage(USAGE) == Usage(
        input_tokens=105, output_tokens=50, cached_input_tokens=60, reasoning_tokens=30
    )
    # Google leaves zero counts out.
    assert parse_usage({"promptTokenCount": 3, "totalTokenCount": 3}) == Usage(input_tokens=3)
    assert parse_usage(None) is None


def test_response_with_text_thoughts_and_calls():
    data = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Plan: ", "thought": True},
                        {"text": "check both", "thought": True},
                        {"text": "Checking."},
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": "c2ln",
                        },
                        {"functionCall": {"name": "get_time"}},
                    ],
                },
                "finishReason": "STOP",
            },
            {"content": {"parts": [{"text": "second"}]}, "finishReason": "MAX_TOKENS", "index": 1},
        ],
        "usageMetadata": USAGE,
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-1",
    }
    result = parse_response(data, LABEL)
    first, second = result.choices
    assert first.index == 0 and second.index == 1
    assert first.finish_reason == "tool_calls" and second.finish_reason == "length"
    assert first.message.text() == "Checking."
    assert first.message.reasoning == "Plan: check both"
    weather, clock = first.message.tool_calls
    assert (weather.name, weather.arguments) == ("get_weather", '{"city":"Paris"}')
    assert (clock.name, clock.arguments) == ("get_time", "{}")
    assert signature_of(weather.id) == "c2ln" and signature_of(clock.id) is None
    assert weather.id != clock.id
    assert second.message.text() == "second" and second.message.reasoning is None
    assert result.usage == parse_usage(USAGE)
    assert (result.upstream_model, result.upstream_id) == ("gemini-2.5-flash", "resp-1")
    trimmed = parse_response(data, LABEL, single_call=True)
    assert [c.name for c in trimmed.choices[0].message.tool_calls] == ["get_weather"]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
        (None, None),
    ],
)
def test_finish_reasons(reason, expected):
    candidate = {"safetyRatings": []} if reason is None else {"finishReason": reason}
    result = parse_response({"candidates": [candidate]}, LABEL)
    assert result.choices[0].finish_reason == expected
    assert result.choices[0].message.content == ()


def test_prompt_block_is_an_empty_content_filtered_answer():
    data = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}
    result = parse_response(data, LABEL)
    assert len(result.choices) == 1
    assert result.choices[0].finish_reason == "content_filter"
    assert result.choices[0].message.content == ()
    assert result.usage == Usage(input_tokens=4)


def test_unusable_responses_are_upstream_errors():
    with pytest.raises(UpstreamError, match="no candidates"):
        parse_response({"usageMetadata": {}}, LABEL)
    with pytest.raises(UpstreamError, match="malformed"):
        parse_response({"candidates": [{"content": {"parts": [{"functionCall": {}}]}}]}, LABEL)
    with pytest.raises(UpstreamError, match="invalid function call") as info:
        parse_response({"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL"}]}, LABEL)
    assert info.value.retryable


def chunk(
    parts: list[dict[str, Any]] | None = None,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
    index: int | None = None,
) -> dict[str, Any]:
    candidate: dict[str, Any] = {}
    if parts is not None:
        candidate["content"] = {"role": "model", "parts": parts}
    if finish is not None:
        candidate["finishReason"] = finish
    if index is not None:
        candidate["index"] = index
    data: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        data["usageMetadata"] = usage
    return data


def test_stream_events_and_closing_order():
    state = StreamState(LABEL)
    events = state.feed(chunk([{"text": "hm", "thought": True}], usage={"promptTokenCount": 9}))
    events += state.feed(chunk([{"text": "Hello"}]))
    events += state.feed(
        chunk([{"text": " world"}, {"functionCall": {"name": "f", "args": {"a": 1}}}], "STOP")
    )
    events += state.feed({"candidates": [], "usageMetadata": USAGE})
    events += state.close()
    call = events[3]
    assert isinstance(call, ToolCallDelta) and call.id is not None
    usage = parse_usage(USAGE)
    assert usage is not None
    assert events == [
        ReasoningDelta("hm"),
        TextDelta("Hello"),
        TextDelta(" world"),
        ToolCallDelta(0, '{"a":1}', call.id, "f"),
        UsageReport(usage),
        Finished("tool_calls"),
    ]


def test_stream_with_two_candidates_and_single_call_mode():
    state = StreamState(LABEL, single_call=True)
    calls = [{"functionCall": {"name": "f"}}, {"functionCall": {"name": "g"}}]
    events = state.feed(
        {
            "candidates": [
                chunk(calls, "STOP")["candidates"][0],
                chunk([{"text": "b"}], index=1)["candidates"][0],
            ]
        }
    )
    events += state.feed(chunk([], "MAX_TOKENS", index=1))
    events += state.close()
    assert [type(e).__name__ for e in events] == [
        "ToolCallDelta",
        "TextDelta",
        "Finished",
        "Finished",
    ]
    assert events[1] == TextDelta("b", 1)
    assert events[2:] == [Finished("tool_calls", 0), Finished("length", 1)]


def test_stream_cut_short_or_blocked():
    state = StreamState(LABEL)
    state.feed(chunk([{"text": "partial"}]))
    with pytest.raises(UpstreamConnectionError, match="finish reason"):
        state.close()
    with pytest.raises(UpstreamConnectionError):
        StreamState(LABEL).close()
    blocked = StreamState(LABEL)
    assert blocked.feed({"promptFeedback": {"blockReason": "OTHER"}}) == []
    assert blocked.close() == [Finished("content_filter")]
    with pytest.raises(UpstreamError, match="malformed"):
        StreamState(LABEL).feed({"candidates": ["nonsense"]})


def google(code: int, status: str, message: str = "boom", details=None) -> bytes:
    error = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return orjson.dumps({"error": error})


def test_error_classification():
    bad = classify_error(400, {}, google(400, "INVALID_ARGUMENT", "bad temperature"), LABEL)
    assert type(bad) is InvalidRequest and "bad temperature" in bad.message
    key_info = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
    for status, body in (
        (400, google(400, "INVALID_ARGUMENT", "API key AIzaSECRET not valid", key_info)),
        (403, google(403, "PERMISSION_DENIED", "Consumer api_key:AIzaSECRET suspended")),
        (401, google(401, "UNAUTHENTICATED", "AIzaSECRET")),
    ):
        error = classify_error(status, {}, body, LABEL)
        assert type(error) is UpstreamError and error.status == 502
        assert "SECRET" not in error.message
    region = classify_error(400, {}, google(400, "FAILED_PRECONDITION", "enable billing"), LABEL)
    assert type(region) is UpstreamError and "enable billing" in region.message
    missing = classify_error(404, {}, google(404, "NOT_FOUND"), LABEL)
    assert type(missing) is UpstreamError and missing.code == "upstream_not_found"
    assert type(classify_error(500, {}, google(500, "INTERNAL"), LABEL)) is UpstreamError
    assert type(classify_error(503, {}, google(503, "UNAVAILABLE"), LABEL)) is UpstreamUnavailable
    assert type(classify_error(504, {}, google(504, "DEADLINE_EXCEEDED"), LABEL)) is UpstreamTimeout
    odd = classify_error(502, {}, b"<html>Bad Gateway</html>", LABEL)
    assert type(odd) is UpstreamError and "Bad Gateway" in odd.message


def test_rate_limit_delay_from_header_or_retry_info():
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13.5s"}]
    body = google(429, "RESOURCE_EXHAUSTED", "quota", details)
    limited = classify_error(429, {}, body, LABEL)
    assert type(limited) is RateLimited and limited.retry_after == 13.5
    assert classify_error(429, {"retry-after": "2"}, body, LABEL).retry_after == 2
    assert classify_error(429, {}, google(429, "RESOURCE_EXHAUSTED"), LABEL).retry_after is None


def test_embedding_batches():
    extra = {"task_type": "retrieval_query", "user": None}
    request = EmbeddingRequest("e", [f"t{i}" for i in range(205)], dimensions=8, extra=extra)
    bodies = embedding_bodies(request, "models/gemini-embedding-001")
    assert [count for count, _ in bodies] == [100, 100, 5]
    first = orjson.loads(bodies[0][1])["requests"][0]
    assert first == {
        "model": "models/gemini-embedding-001",
        "outputDimensionality": 8,
        "taskType": "RETRIEVAL_QUERY",
        "content": {"parts": [{"text": "t0"}]},
    }
    with pytest.raises(InvalidRequest) as info:
        embedding_bodies(EmbeddingRequest("e", [[1, 2, 3]]), "models/m")
    assert info.value.param == "input[0]"
    with pytest.raises(InvalidRequest, match="encoding"):
        embedding_bodies(EmbeddingRequest("e", ["x"], extra={"encoding": "x"}), "models/m")
    assert parse_embeddings({"embeddings": [{"values": [1, 0.5]}]}, 1, LABEL) == [[1.0, 0.5]]
    with pytest.raises(UpstreamError, match="1 embeddings for 2"):
        parse_embeddings({"embeddings": [{"values": [1]}]}, 2, LABEL)
