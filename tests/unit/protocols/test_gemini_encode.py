"""The Gemini dialect's answers: whole responses, both stream framings, errors."""

from __future__ import annotations

import orjson
import pytest

from modelyard.core.chat import ChatResult, Choice, Message, TextPart, ToolCall, Usage
from modelyard.core.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelyardError,
    NotFound,
    RateLimited,
    UpstreamError,
)
from modelyard.core.events import (
    Finished,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from modelyard.protocols.gemini import encode
from modelyard.protocols.gemini.errors import error_body
from modelyard.protocols.gemini.stream import StreamEncoder, error_frame

USAGE = Usage(input_tokens=10, output_tokens=7, cached_input_tokens=4, reasoning_tokens=3)


def test_whole_answer_with_thoughts_text_and_calls():
    message = Message(
        "assistant",
        (TextPart("hi"),),
        tool_calls=(ToolCall("c1", "ls", '{"dir":"/"}'), ToolCall("c2", "bad", "not json")),
        reasoning="hmm",
    )
    result = ChatResult([Choice(0, message, "tool_calls")], USAGE)
    body = orjson.loads(encode.response_json(result, "chat", "r1"))
    (candidate,) = body["candidates"]
    assert candidate["content"] == {
        "role": "model",
        "parts": [
            {"text": "hmm", "thought": True},
            {"text": "hi"},
            {"functionCall": {"id": "c1", "name": "ls", "args": {"dir": "/"}}},
            {"functionCall": {"id": "c2", "name": "bad", "args": {"_raw": "not json"}}},
        ],
    }
    assert candidate["finishReason"] == "STOP" and candidate["index"] == 0
    assert body["usageMetadata"] == {
        "promptTokenCount": 10,
        "candidatesTokenCount": 4,
        "thoughtsTokenCount": 3,
        "cachedContentTokenCount": 4,
        "totalTokenCount": 17,
    }
    assert (body["modelVersion"], body["responseId"]) == ("chat", "r1")


@pytest.mark.parametrize(
    ("reason", "gemini"),
    [("stop", "STOP"), ("length", "MAX_TOKENS"), ("content_filter", "SAFETY"), (None, "STOP")],
)
def test_finish_reasons(reason: str | None, gemini: str):
    assert encode.finish_reason(reason) == gemini  # type: ignore[arg-type]


EVENTS: list[StreamEvent] = [
    ReasoningDelta("think"),
    ReasoningDelta("", signature="sig"),
    TextDelta("Hel"),
    TextDelta("lo"),
    ToolCallDelta(0, '{"a":', id="c1", name="f"),
    ToolCallDelta(0, "1}"),
    Finished("tool_calls"),
    UsageReport(Usage(input_tokens=5, output_tokens=2)),
]


def _chunks(sse: bool) -> tuple[list[bytes], bytes]:
    writer = StreamEncoder("chat", "r1", sse=sse)
    frames = [writer.start()] + [f for e in EVENTS if (f := writer.encode(e))] + [writer.close()]
    return frames, b"".join(frames)


def test_sse_stream_sends_text_as_it_comes_and_calls_at_the_end():
    frames, _ = _chunks(sse=True)
    chunks = [orjson.loads(f.removeprefix(b"data: ")) for f in frames if f]
    assert all(f.endswith(b"\r\n\r\n") for f in frames if f)
    parts = [c["candidates"][0].get("content", {}).get("parts") for c in chunks]
    assert parts[:3] == [[{"text": "think", "thought": True}], [{"text": "Hel"}], [{"text": "lo"}]]
    last = chunks[-1]
    assert last["candidates"] == [
        {
            "finishReason": "STOP",
            "index": 0,
            "content": {
                "role": "model",
                "parts": [{"functionCall": {"id": "c1", "name": "f", "args": {"a": 1}}}],
            },
        }
    ]
    assert last["usageMetadata"]["totalTokenCount"] == 7
    assert all(c["modelVersion"] == "chat" and c["responseId"] == "r1" for c in chunks)


def test_json_array_stream_is_one_array_of_the_same_chunks():
    sse_frames, _ = _chunks(sse=True)
    _, body = _chunks(sse=False)
    array = orjson.loads(body)
    assert array == [orjson.loads(f.removeprefix(b"data: ")) for f in sse_frames if f]


@pytest.mark.parametrize("sent_before", [True, False])
def test_array_stream_error_closes_the_array(sent_before: bool):
    writer = StreamEncoder("chat", "r1", sse=False)
    head = writer.encode(TextDelta("x")) if sent_before else b""
    body = writer.start() + (head or b"") + writer.error(UpstreamError("boom"))
    array = orjson.loads(body)
    assert array[-1]["error"]["status"] == "UNAVAILABLE"
    assert len(array) == (2 if sent_before else 1)


@pytest.mark.parametrize("sse", [True, False])
def test_the_error_frame_needs_no_state_of_the_stream(sse: bool):
    # The route's dialect frames an error without the stream's writer: the same bytes.
    writer = StreamEncoder("chat", "r1", sse=sse)
    writer.encode(TextDelta("x"))
    assert error_frame(UpstreamError("boom"), sse=sse) == writer.error(UpstreamError("boom"))


def test_array_stream_writes_end_where_the_next_may_start():
    frames, body = _chunks(sse=False)
    assert frames[0] == b"["
    assert all(f.endswith(b"},\r\n") for f in frames[1:-1]) and frames[-1].endswith(b"}]")
    assert body.count(b"},\r\n{") == len(frames) - 2  # one separator between chunks


@pytest.mark.parametrize(
    ("err", "status", "name"),
    [
        (InvalidRequest("bad", param="x"), 400, "INVALID_ARGUMENT"),
        (AuthenticationFailed("no key"), 401, "UNAUTHENTICATED"),
        (NotFound("no model"), 404, "NOT_FOUND"),
        (RateLimited("slow down"), 429, "RESOURCE_EXHAUSTED"),
        (UpstreamError("down"), 502, "UNAVAILABLE"),
    ],
)
def test_errors_in_googles_shape(err: ModelyardError, status: int, name: str):
    body = orjson.loads(error_body(err))
    assert body == {"error": {"code": status, "message": err.message, "status": name}}
