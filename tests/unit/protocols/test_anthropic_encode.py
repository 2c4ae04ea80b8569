from typing import Any

import orjson
import pytest

from modelyard.core.chat import ChatResult, Choice, Message, TextPart, ToolCall, Usage
from modelyard.core.errors import (
    AuthenticationFailed,
    InternalError,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    PermissionDenied,
    QueueFull,
    RateLimited,
    UpstreamConnectionError,
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
from modelyard.protocols.anthropic import encode, errors
from modelyard.protocols.anthropic.count import estimate_input_tokens
from modelyard.protocols.anthropic.decode import decode_count_tokens
from modelyard.protocols.anthropic.stream import StreamEncoder
from modelyard.protocols.headers import error_headers


def _frames(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Split SSE bytes into (event, data) pairs, checking each frame's shape."""
    out: list[tuple[str, dict[str, Any]]] = []
    for chunk in raw.split(b"\n\n")[:-1]:
        event_line, data_line = chunk.split(b"\n")
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: ")
        event, data = event_line[7:].decode(), orjson.loads(data_line[6:])
        assert data["type"] == event
        out.append((event, data))
    assert raw.endswith(b"\n\n") or raw == b""
    return out


def _result(message: Message, reason="stop", usage=None) -> ChatResult:
    return ChatResult(choices=[Choice(0, message, reason)], usage=usage)


def test_message_json_shape_and_usage_arithmetic():
    usage = Usage(
        100,
        20,
        cached_input_tokens=30,
        cache_write_tokens=10,
        reasoning_tokens=5,
        cache_write_1h_tokens=4,
    )
    body = orjson.loads(
        encode.message_json(
            _result(Message("assistant", (TextPart("hi"),)), usage=usage), "msg_1", "dep"
        )
    )
    assert body == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "dep",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 60,  # 100 inclusive - 30 read from cache - 10 written to it
            "output_tokens": 20,
            "cache_creation_input_tokens": 10,
            "cache_read_input_tokens": 30,
            # the writes by lifetime, as the API splits them
            "cache_creation": {"ephemeral_5m_input_tokens": 6, "ephemeral_1h_input_tokens": 4},
        },
    }


def test_message_json_thinking_text_and_tool_use_in_order():
    message = Message(
        "assistant",
        (TextPart("checking"),),
        tool_calls=(
            ToolCall("call_1", "w", '{"city": "Paris"}'),
            ToolCall("call_2", "noargs", ""),
            ToolCall("call_3", "broken", '{"city": '),
            ToolCall("call_4", "listy", "[1, 2]"),
        ),
        reasoning="hmm",
        reasoning_signature="sig",
    )
    body = orjson.loads(encode.message_json(_result(message, "tool_calls"), "msg_2", "dep"))
    assert body["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "checking"},
        {"type": "tool_use", "id": "call_1", "name": "w", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "noargs", "input": {}},
        {"type": "tool_use", "id": "call_3", "name": "broken", "input": {"_raw": '{"city": '}},
        {"type": "tool_use", "id": "call_4", "name": "listy", "input": {"_raw": "[1, 2]"}},
    ]
    assert body["stop_reason"] == "tool_use"
    assert body["usage"]["input_tokens"] == 0  # no usage reported: zeros, not missing fields


@pytest.mark.parametrize(
    ("reason", "calls", "expected"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("content_filter", False, "refusal"),
        ("stop", True, "tool_use"),  # some servers say "stop" after tool calls
        ("length", True, "max_tokens"),
        (None, False, "end_turn"),
    ],
)
def test_stop_reasons(reason, calls, expected):
    assert encode.stop_reason(reason, calls) == expected


def test_empty_answer_has_no_blocks():
    body = orjson.loads(encode.message_json(ChatResult(choices=[], usage=None), "msg_3", "dep"))
    assert body["content"] == [] and body["stop_reason"] == "end_turn"


def test_stream_text_sequence():
    enc = StreamEncoder("msg_s", "dep")
    raw = enc.start()
    for event in (
        TextDelta("Hel"),
        TextDelta(""),
        TextDelta("lo"),
        Finished("stop"),
        UsageReport(Usage(12, 3, cached_input_tokens=2)),
    ):
        raw += enc.encode(event)
    raw += enc.close()
    frames = _frames(raw)
    assert [e for e, _ in frames] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = frames[0][1]["message"]
    assert start["id"] == "msg_s" and start["model"] == "dep" and start["content"] == []
    assert start["usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert frames[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert [f[1]["delta"] for f in frames[3:5]] == [
        {"type": "text_delta", "text": "Hel"},
        {"type": "text_delta", "text": "lo"},
    ]
    assert frames[6][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 10,
            "output_tokens": 3,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 2,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        },
    }


def test_stream_sends_the_one_hour_cache_writes_in_message_delta():
    enc = StreamEncoder("msg_h", "dep")
    raw = enc.start()
    usage = Usage(500, 3, cache_write_tokens=400, cache_write_1h_tokens=300)
    for event in (TextDelta("hi"), Finished("stop"), UsageReport(usage)):
        raw += enc.encode(event)
    frames = _frames(raw + enc.close())
    [delta] = [data for event, data in frames if event == "message_delta"]
    assert delta["usage"]["cache_creation_input_tokens"] == 400
    assert delta["usage"]["cache_creation"] == {
        "ephemeral_5m_input_tokens": 100,
        "ephemeral_1h_input_tokens": 300,
    }


def test_stream_thinking_then_text_then_tool_calls():
    enc = StreamEncoder("msg_t", "dep")
    raw = b""
    for event in (
        ReasoningDelta("let me "),
        ReasoningDelta("think"),
        ReasoningDelta("", signature="sig-9"),
        TextDelta("Checking."),
        ToolCallDelta(0, "", id="call_a", name="w"),
        ToolCallDelta(0, '{"city":'),
        ToolCallDelta(0, '"Paris"}'),
        ToolCallDelta(1, '{"x":1}', id="call_b", name="v"),
        Finished("tool_calls"),
    ):
        raw += enc.encode(event)
    raw += enc.close()
    frames = _frames(raw)
    summary = [
        (e, d.get("index"), (d.get("content_block") or d.get("delta") or {}).get("type"))
        for e, d in frames
    ]
    assert summary == [
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None),
        ("content_block_start", 3, "tool_use"),
        ("content_block_delta", 3, "input_json_delta"),
        ("content_block_stop", 3, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    assert frames[0][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert frames[3][1]["delta"] == {"type": "signature_delta", "signature": "sig-9"}
    assert frames[8][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "w",
        "input": {},
    }
    pieces = [d["delta"]["partial_json"] for e, d in frames if d.get("index") == 2 and "delta" in d]
    assert orjson.loads("".join(pieces)) == {"city": "Paris"}
    assert frames[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert frames[-2][1]["usage"]["output_tokens"] == 0  # no usage came: zeros


def test_stream_interleaved_call_pieces_go_to_their_block_and_missing_ids_are_minted():
    enc = StreamEncoder("msg_i", "dep")
    raw = b"".join(
        enc.encode(e)
        for e in (
            ToolCallDelta(0, '{"a":', name="f"),
            ToolCallDelta(1, "{}", id="call_b", name="g"),
            ToolCallDelta(0, "1}"),
            Finished("stop"),
        )
    )
    frames = _frames(raw + enc.close())
    first = frames[0][1]["content_block"]
    assert first["id"].startswith("toolu_") and first["name"] == "f"
    late = [d for e, d in frames if e == "content_block_delta" and d["index"] == 0]
    assert "".join(d["delta"]["partial_json"] for d in late) == '{"a":1}'
    assert frames[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_stream_ignores_other_choices():
    enc = StreamEncoder("msg_c", "dep")
    assert enc.encode(TextDelta("x", index=1)) == b""
    assert enc.encode(Finished("length", index=1)) == b""
    frames = _frames(enc.close())
    assert [e for e, _ in frames] == ["message_delta", "message_stop"]
    assert frames[0][1]["delta"]["stop_reason"] == "end_turn"


@pytest.mark.parametrize(
    ("err", "status", "kind"),
    [
        (InvalidRequest("messages: bad", param="messages"), 400, "invalid_request_error"),
        (AuthenticationFailed("no key"), 401, "authentication_error"),
        (PermissionDenied("no"), 403, "permission_error"),
        (ModelNotFound("x", ["a"]), 404, "not_found_error"),
        (PayloadTooLarge("big"), 413, "request_too_large"),
        (RateLimited("slow down", retry_after=2.2), 429, "rate_limit_error"),
        (QueueFull("busy", retry_after=1.0), 429, "rate_limit_error"),
        (UpstreamError("bad upstream"), 502, "api_error"),
        (UpstreamConnectionError("reset"), 502, "api_error"),
        (UpstreamUnavailable("overloaded"), 503, "overloaded_error"),
        (UpstreamTimeout("slow"), 504, "timeout_error"),
        (InternalError("bug"), 500, "api_error"),
    ],
)
def test_error_types_and_statuses(err, status, kind):
    body = orjson.loads(errors.error_body(err, "req_1"))
    assert err.status == status
    assert body == {
        "type": "error",
        "error": {"type": kind, "message": err.message},
        "request_id": "req_1",
    }


def test_retry_after_header_rounds_up_and_is_absent_without_a_hint():
    assert error_headers(RateLimited("x", retry_after=2.2)) == {"retry-after": "3"}
    assert error_headers(RateLimited("x", retry_after=0.1)) == {"retry-after": "1"}
    assert error_headers(UpstreamError("x")) == {}
    # A 429 always says when to come back, even when nobody upstream said.
    assert error_headers(RateLimited("x")) == {"retry-after": "1"}


def test_stream_error_frame():
    frames = _frames(errors.stream_error_frame(UpstreamConnectionError("upstream closed")))
    assert frames == [
        ("error", {"type": "error", "error": {"type": "api_error", "message": "upstream closed"}})
    ]


def test_count_estimate_covers_text_tools_and_images():
    body = {
        "model": "m",
        "system": "x" * 40,
        "messages": [
            {"role": "user", "content": "y" * 400},
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://example.test/a"}}
                ],
            },
        ],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
    }
    small = estimate_input_tokens(decode_count_tokens({**body, "tools": []}))
    # 440 characters / 4, three messages of framing, one image.
    assert small == 110 + 3 * 4 + 1600
    assert estimate_input_tokens(decode_count_tokens(body)) > small
    assert orjson.loads(encode.count_json(7)) == {"input_tokens": 7}
