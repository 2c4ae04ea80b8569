"""Parsing Messages API answers, usage, stop reasons, stream events and errors into core."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard.core.chat import Usage
from modelyard.core.errors import (
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from modelyard.core.events import (
    Finished,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from modelyard.providers.anthropic.errors import classify_error
from modelyard.providers.anthropic.response import finish_reason, parse_message, parse_usage
from modelyard.providers.anthropic.stream import StreamState

LABEL = "provider 'claude'"


def test_usage_is_made_inclusive_of_cache_reads_and_writes():
    usage = parse_usage(
        {
            "input_tokens": 12,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 300,
            "output_tokens": 40,
            "output_tokens_details": {"thinking_tokens": 25},
        }
    )
    assert usage == Usage(
        input_tokens=1312,
        output_tokens=40,
        cached_input_tokens=1000,
        cache_write_tokens=300,
        reasoning_tokens=25,
    )
    assert parse_usage({"input_tokens": 3, "output_tokens": 1, "cache_read_input_tokens": None})
    assert parse_usage(None) is None


def test_usage_keeps_the_one_hour_part_of_the_cache_writes():
    raw: dict[str, Any] = {
        "input_tokens": 12,
        "cache_creation_input_tokens": 300,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
        "output_tokens": 40,
    }
    assert parse_usage(raw) == Usage(
        input_tokens=312, output_tokens=40, cache_write_tokens=300, cache_write_1h_tokens=200
    )
    # Never more than the writes; a broken count is a broken answer, as for every count.
    raw["cache_creation"] = {"ephemeral_1h_input_tokens": 900}
    usage = parse_usage(raw)
    assert usage is not None and usage.cache_write_1h_tokens == 300
    raw["cache_creation"] = {"ephemeral_1h_input_tokens": -1}
    with pytest.raises(ValueError):
        parse_usage(raw)


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons(stop_reason, expected):
    assert finish_reason(stop_reason, client_calls=True) == expected


def test_tool_use_for_the_json_tool_alone_is_a_plain_stop():
    assert finish_reason("tool_use", client_calls=False) == "stop"


def message(*blocks: dict[str, Any], stop_reason: str = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": list(blocks),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 7},
    }


def test_parse_message_with_thinking_text_and_tools():
    data = message(
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig=="},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Checking "},
        {"type": "text", "text": "now."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "clock", "input": {}},
        stop_reason="tool_use",
    )
    result = parse_message(data, None, LABEL)
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.text() == "Checking now."
    assert choice.message.reasoning == "Hmm."
    assert choice.message.reasoning_signature == "sig=="
    assert [(c.id, c.name, orjson.loads(c.arguments)) for c in choice.message.tool_calls] == [
        ("toolu_1", "weather", {"city": "Paris"}),
        ("toolu_2", "clock", {}),
    ]
    assert result.upstream_id == "msg_01"
    assert result.upstream_model == "claude-sonnet-4-5"
    assert result.usage == Usage(input_tokens=5, output_tokens=7)


def test_the_json_tool_becomes_the_answer_text():
    data = message(
        {"type": "tool_use", "id": "t", "name": "json_response", "input": {"a": [1, 2]}},
        stop_reason="tool_use",
    )
    choice = parse_message(data, "json_response", LABEL).choices[0]
    assert orjson.loads(choice.message.text()) == {"a": [1, 2]}
    assert choice.message.tool_calls == ()
    assert choice.finish_reason == "stop"


def test_a_malformed_message_is_an_upstream_error():
    with pytest.raises(UpstreamError, match="malformed"):
        parse_message({"content": [{"type": "text"}]}, None, LABEL)


def feed_all(state: StreamState, events: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    out: list[Any] = []
    for name, payload in events:
        out.extend(state.feed(name, orjson.dumps({"type": name, **payload}).decode()))
    return out


START = (
    "message_start",
    {
        "message": {
            "id": "msg_1",
            "content": [],
            "usage": {
                "input_tokens": 10,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 0,
                "output_tokens": 1,
            },
        }
    },
)


def block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_start", {"index": index, "content_block": block}


def delta(index: int, **d: Any) -> tuple[str, dict[str, Any]]:
    return "content_block_delta", {"index": index, "delta": d}


def stop(index: int) -> tuple[str, dict[str, Any]]:
    return "content_block_stop", {"index": index}


def end(reason: str, output: int) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("message_delta", {"delta": {"stop_reason": reason}, "usage": {"output_tokens": output}}),
        ("message_stop", {}),
    ]


def test_stream_with_thinking_text_and_tools_renumbers_tool_calls():
    state = StreamState(None, LABEL)
    events = feed_all(
        state,
        [
            START,
            block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
            ("ping", {}),
            delta(0, type="thinking_delta", thinking="Think."),
            delta(0, type="signature_delta", signature="sig=="),
            stop(0),
            block_start(1, {"type": "text", "text": ""}),
            delta(1, type="text_delta", text="Sure."),
            stop(1),
            block_start(2, {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {}}),
            delta(2, type="input_json_delta", partial_json=""),
            delta(2, type="input_json_delta", partial_json='{"city": '),
            delta(2, type="input_json_delta", partial_json='"Paris"}'),
            stop(2),
            block_start(3, {"type": "tool_use", "id": "toolu_b", "name": "clock", "input": {}}),
            stop(3),
            *end("tool_use", 42),
        ],
    )
    assert events == [
        ReasoningDelta("Think."),
        ReasoningDelta("", signature="sig=="),
        TextDelta("Sure."),
        ToolCallDelta(0, "", id="toolu_a", name="weather"),
        ToolCallDelta(0, '{"city": '),
        ToolCallDelta(0, '"Paris"}'),
        ToolCallDelta(1, "", id="toolu_b", name="clock"),
        ToolCallDelta(1, "{}"),
        UsageReport(
            Usage(input_tokens=110, output_tokens=42, cached_input_tokens=100, cache_write_tokens=0)
        ),
        Finished("tool_calls"),
    ]
    assert state.finished


def test_stream_json_tool_streams_as_text():
    state = StreamState("json_response", LABEL)
    events = feed_all(
        state,
        [
            START,
            block_start(0, {"type": "tool_use", "id": "t", "name": "json_response", "input": {}}),
            delta(0, type="input_json_delta", partial_json='{"a":'),
            delta(0, type="input_json_delta", partial_json=" 1}"),
            stop(0),
            *end("tool_use", 5),
        ],
    )
    assert events[:2] == [TextDelta('{"a":'), TextDelta(" 1}")]
    assert events[-1] == Finished("stop")


def test_message_delta_usage_replaces_earlier_counts():
    state = StreamState(None, LABEL)
    message_delta = {
        "delta": {"stop_reason": "max_tokens"},
        "usage": {"input_tokens": 11, "cache_read_input_tokens": 100, "output_tokens": 9},
    }
    events = feed_all(state, [START, ("message_delta", message_delta), ("message_stop", {})])
    assert events == [
        UsageReport(Usage(input_tokens=111, output_tokens=9, cached_input_tokens=100)),
        Finished("length"),
    ]


def test_stream_error_event_is_classified():
    state = StreamState(None, LABEL)
    error = {"error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": "r1"}
    with pytest.raises(UpstreamUnavailable) as info:
        feed_all(state, [START, ("error", error)])
    assert "Overloaded" in info.value.message
    assert "r1" in info.value.message
    with pytest.raises(InvalidRequest):
        feed_all(
            StreamState(None, LABEL), [("error", {"error": {"type": "invalid_request_error"}})]
        )


def test_stream_garbage_is_an_upstream_error():
    with pytest.raises(UpstreamError, match="not JSON"):
        StreamState(None, LABEL).feed("message_start", "{nope")
    with pytest.raises(UpstreamError, match="malformed content_block_start"):
        StreamState(None, LABEL).feed("content_block_start", '{"type": "content_block_start"}')


def error_body(kind: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [
        (400, "invalid_request_error", InvalidRequest),
        (404, "not_found_error", UpstreamError),
        (413, "request_too_large", InvalidRequest),
        (429, "rate_limit_error", RateLimited),
        (500, "api_error", UpstreamError),
        (504, "timeout_error", UpstreamTimeout),
        (529, "overloaded_error", UpstreamUnavailable),
    ],
)
def test_error_statuses(status, kind, expected):
    error = classify_error(status, {}, error_body(kind, "details here"), LABEL)
    assert type(error) is expected
    assert "details here" in error.message


@pytest.mark.parametrize("status", [401, 403])
def test_credential_errors_hide_the_upstream_text(status):
    error = classify_error(status, {}, error_body("authentication_error", "key sk-ant-123"), LABEL)
    assert type(error) is UpstreamError
    assert error.status == 502
    assert "sk-ant" not in error.message


def test_a_spent_balance_fails_over_and_keeps_its_redacted_text():
    body = error_body("billing_error", "Your credit balance is too low (key sk-ant-123)")
    error = classify_error(402, {}, body, LABEL)
    assert type(error) is UpstreamError and error.code == "upstream_account" and error.retryable
    assert "credit balance is too low" in error.message and "sk-ant" not in error.message


def test_rate_limit_carries_retry_after_and_the_request_id():
    error = classify_error(
        429,
        {"retry-after": "7", "request-id": "req_01abc"},
        error_body("rate_limit_error", "slow down"),
        LABEL,
    )
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7
    assert "req_01abc" in error.message


def test_non_json_error_bodies():
    error = classify_error(502, {}, b"<html>bad gateway</html>", LABEL)
    assert type(error) is UpstreamError
    assert "bad gateway" in error.message
