"""The event-stream decoder: frames split anywhere, CRCs checked, frames turned into events."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson
import pytest

from modelyard.core.errors import (
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from modelyard.core.events import Finished, StreamEvent, TextDelta, ToolCallDelta, UsageReport
from modelyard.providers.bedrock.eventstream import EventStreamDecoder, Frame
from modelyard.providers.bedrock.stream import StreamTranslator
from tests.fakes.bedrock_frames import encode_frame, event_frame, exception_frame

LABEL = "provider 'br'"


def _frames() -> list[bytes]:
    return [
        event_frame("messageStart", {"role": "assistant"}, 0),
        event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "héllo"}}, 1),
        event_frame("contentBlockStop", {"contentBlockIndex": 0}, 2),
        event_frame("messageStop", {"stopReason": "end_turn"}, 3),
    ]


def _decode(pieces: list[bytes]) -> list[Frame]:
    decoder = EventStreamDecoder(LABEL)
    frames: list[Frame] = []
    for piece in pieces:
        frames.extend(decoder.feed(piece))
    return frames


def test_a_known_frame_decodes() -> None:
    # Built by hand from the format: one string header, a 2-byte payload.
    header = b"\x0b:event-type" + b"\x07" + struct.pack(">H", 4) + b"ping"
    total = 12 + len(header) + 2 + 4
    prelude = struct.pack(">II", total, len(header))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + header + b"{}"
    raw = message + struct.pack(">I", zlib.crc32(message))
    [frame] = _decode([raw])
    assert frame.event_type == "ping"
    assert frame.message_type == "event"
    assert frame.payload == b"{}"


def test_frames_split_at_every_byte_boundary() -> None:
    stream = b"".join(_frames())
    whole = _decode([stream])
    assert [f.event_type for f in whole] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
    ]
    assert orjson.loads(whole[1].payload)["delta"] == {"text": "héllo"}
    for cut in range(1, len(stream)):
        assert _decode([stream[:cut], stream[cut:]]) == whole, cut


def test_frames_fed_one_byte_at_a_time() -> None:
    stream = b"".join(_frames())
    assert _decode([stream[i : i + 1] for i in range(len(stream))]) == _decode([stream])


def test_a_partial_frame_yields_nothing_yet() -> None:
    frame = _frames()[1]
    decoder = EventStreamDecoder(LABEL)
    assert decoder.feed(frame[:-1]) == []
    assert len(decoder.feed(frame[-1:])) == 1


@pytest.mark.parametrize("where", ["payload", "message_crc", "prelude_crc", "length"])
def test_corruption_is_an_upstream_error(where: str) -> None:
    frame = bytearray(_frames()[1])
    if where == "payload":
        frame[-6] ^= 0x01
    elif where == "message_crc":
        frame[-1] ^= 0x01
    elif where == "prelude_crc":
        frame[9] ^= 0x01
    else:
        frame[3] ^= 0x01
    with pytest.raises(UpstreamError, match="corrupt event-stream frame"):
        _decode([bytes(frame)])


def _translate(*frames: bytes, json_tool: str | None = None) -> list[StreamEvent]:
    translator = StreamTranslator(json_tool, LABEL)
    events: list[StreamEvent] = []
    for frame in _decode(list(frames)):
        events.extend(translator.frame(frame))
    return events


def _end(stop: str = "end_turn") -> list[bytes]:
    usage = {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}
    return [
        event_frame("messageStop", {"stopReason": stop}),
        event_frame("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}),
    ]


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})


def _tool_start(index: int, tool_id: str, name: str) -> bytes:
    start = {"toolUse": {"toolUseId": tool_id, "name": name}}
    return event_frame("contentBlockStart", {"contentBlockIndex": index, "start": start})


def test_tool_call_indices_count_tool_calls_only() -> None:
    events = _translate(
        event_frame("messageStart", {"role": "assistant"}),
        _delta(0, {"text": "Let me check."}),
        _tool_start(1, "t1", "a"),
        _delta(1, {"toolUse": {"input": '{"x"'}}),
        _delta(1, {"toolUse": {"input": ": 1}"}}),
        _tool_start(2, "t2", "b"),
        _delta(2, {"toolUse": {"input": "{}"}}),
        *_end("tool_use"),
    )
    assert events[0] == TextDelta("Let me check.")
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert calls == [
        ToolCallDelta(0, "", "t1", "a"),
        ToolCallDelta(0, '{"x"'),
        ToolCallDelta(0, ": 1}"),
        ToolCallDelta(1, "", "t2", "b"),
        ToolCallDelta(1, "{}"),
    ]
    assert isinstance(events[-2], UsageReport)
    assert events[-1] == Finished("tool_calls")


def test_the_json_answer_tool_streams_as_text() -> None:
    events = _translate(
        _tool_start(0, "t1", "json_answer"),
        _delta(0, {"toolUse": {"input": '{"a":'}}),
        _delta(0, {"toolUse": {"input": " 1}"}}),
        *_end("tool_use"),
        json_tool="json_answer",
    )
    assert events[:2] == [TextDelta('{"a":'), TextDelta(" 1}")]
    assert events[-1] == Finished("stop")


def test_usage_and_finish_wait_for_both_events() -> None:
    translator = StreamTranslator(None, LABEL)
    [stop, metadata] = _decode(_end("max_tokens"))
    assert translator.frame(stop) == []
    assert not translator.done
    events = translator.frame(metadata)
    assert translator.done
    assert events[-1] == Finished("length")


def test_a_delta_for_an_unstarted_tool_is_malformed() -> None:
    with pytest.raises(UpstreamError, match="malformed contentBlockDelta"):
        _translate(_delta(3, {"toolUse": {"input": "{}"}}))


@pytest.mark.parametrize(
    ("exception", "error"),
    [
        ("throttlingException", RateLimited),
        ("serviceUnavailableException", UpstreamUnavailable),
        ("internalServerException", UpstreamError),
        ("modelStreamErrorException", UpstreamError),
        ("validationException", InvalidRequest),
        ("modelTimeoutException", UpstreamTimeout),
    ],
)
def test_exception_frames_raise_classified_errors(exception: str, error: type) -> None:
    with pytest.raises(error) as info:
        _translate(_delta(0, {"text": "hi"}), exception_frame(exception, "it broke"))
    assert type(info.value) is error
    assert "it broke" in str(info.value)


def test_protocol_error_frames_raise() -> None:
    headers = {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "x"}
    with pytest.raises(UpstreamError, match="InternalFailure"):
        _translate(encode_frame(headers, b""))
