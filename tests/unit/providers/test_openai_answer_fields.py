"""The OpenAI-compatible codec keeps what the core does not model of an answer (``Native``)
and reads a refusal, non-streaming and streaming."""

from __future__ import annotations

from typing import Any

from modelyard.core.events import (
    Finished,
    NativeDelta,
    RefusalDelta,
    TextDelta,
    UsageReport,
)
from modelyard.providers.openai_compatible import codec

LOGPROBS = {"content": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": []}]}
CITATION = {
    "type": "url_citation",
    "url_citation": {"start_index": 0, "end_index": 2, "url": "https://a.example", "title": "A"},
}


def _answer(message: dict[str, Any], **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", **choice}],
    }


def test_a_plain_answer_carries_nothing_unmodelled():
    data = _answer({"role": "assistant", "content": "Hi", "refusal": None}, logprobs=None)
    result = codec.parse_response(data, "p")
    assert result.native is None
    assert result.choices[0].native is None
    assert result.choices[0].message.refusal is None


def test_logprobs_and_annotations_are_kept_with_the_text_they_describe():
    message = {"role": "assistant", "content": "Hi", "annotations": [CITATION], "audio": None}
    result = codec.parse_response(_answer(message, logprobs=LOGPROBS), "p")
    native = result.choices[0].native
    assert native is not None and native.origin == "openai"
    assert native.fields == {"logprobs": LOGPROBS, "message": {"annotations": [CITATION]}}
    assert native.text == "Hi"


def test_a_refusal_is_modelled():
    message = {"role": "assistant", "content": None, "refusal": "I can't."}
    choice = codec.parse_response(_answer(message), "p").choices[0]
    assert choice.message.refusal == "I can't."
    assert choice.message.content == ()
    assert choice.native is None


def test_unmodelled_top_level_fields_and_the_usage_as_sent():
    usage = {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
        "completion_tokens_details": {"reasoning_tokens": 0, "rejected_prediction_tokens": 4},
    }
    data = {**_answer({"role": "assistant", "content": "Hi"}), "usage": usage}
    data["service_tier"] = "flex"
    result = codec.parse_response(data, "p")
    assert result.native is not None and result.native.origin == "openai"
    assert result.native.fields is data  # as it came: the encoder writes the core's over it
    assert result.usage is not None and result.usage.output_tokens == 2
    bare = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    plain = {**_answer({"role": "assistant", "content": "Hi"}), "usage": bare}
    assert codec.parse_response(plain, "p").native is None


def _chunk(delta: dict[str, Any], **choice: Any) -> dict[str, Any]:
    return {"choices": [{"index": 1, "delta": delta, "finish_reason": None, **choice}]}


def test_a_plain_text_chunk_is_one_event():
    assert codec.parse_chunk(_chunk({"content": "Hi"}, logprobs=None)) == [TextDelta("Hi", 1)]


def test_a_chunk_logprobs_come_before_its_text():
    events = codec.parse_chunk(_chunk({"content": "Hi"}, logprobs=LOGPROBS))
    assert len(events) == 2 and events[1] == TextDelta("Hi", 1)
    first = events[0]
    assert isinstance(first, NativeDelta) and first.index == 1
    assert first.native.fields == {"logprobs": LOGPROBS}
    assert first.native.text == "Hi"


def test_a_refusal_chunk_and_an_annotations_chunk():
    assert codec.parse_chunk(_chunk({"refusal": "No"})) == [RefusalDelta("No", 1)]
    [event] = codec.parse_chunk(_chunk({"annotations": [CITATION]}))
    assert isinstance(event, NativeDelta)
    assert event.native.fields == {"delta": {"annotations": [CITATION]}}
    assert event.native.text is None


def test_the_first_chunk_with_empty_logprobs_keeps_them():
    first = {"role": "assistant", "content": "", "refusal": None}
    [event] = codec.parse_chunk(_chunk(first, logprobs={"content": [], "refusal": None}))
    assert isinstance(event, NativeDelta)
    assert event.native.fields == {"logprobs": {"content": [], "refusal": None}}


def test_the_finish_and_usage_chunks():
    usage = {
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "total_tokens": 2,
        "prompt_tokens_details": {"audio_tokens": 7},
    }
    [report] = codec.parse_chunk({"choices": [], "usage": usage})
    assert isinstance(report, UsageReport) and report.native is not None
    assert report.native.fields is usage
    bare = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    [plain] = codec.parse_chunk({"choices": [], "usage": bare})
    assert isinstance(plain, UsageReport) and plain.native is None
    ended = codec.parse_chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    assert ended == [Finished("stop", 0)]


def test_logprobs_go_just_before_the_text_they_describe():
    delta = {"reasoning_content": "hmm", "content": "Hi", "refusal": 7}
    events = codec.parse_chunk(_chunk(delta, logprobs=LOGPROBS))
    assert [type(e).__name__ for e in events] == ["ReasoningDelta", "NativeDelta", "TextDelta"]
    native = events[1]
    assert isinstance(native, NativeDelta) and native.native.text == "Hi"


def test_a_refusals_logprobs_are_kept_with_the_refusal_they_describe():
    refusal_logprobs = {"content": None, "refusal": LOGPROBS["content"]}
    message = {"role": "assistant", "content": None, "refusal": "No"}
    native = codec.parse_response(_answer(message, logprobs=refusal_logprobs), "p").choices[0]
    assert native.native is not None
    assert (native.native.text, native.native.refusal) == (None, "No")
    events = codec.parse_chunk(_chunk({"refusal": "No"}, logprobs=refusal_logprobs))
    assert [type(e).__name__ for e in events] == ["NativeDelta", "RefusalDelta"]
    first = events[0]
    assert isinstance(first, NativeDelta) and first.native.refusal == "No"
