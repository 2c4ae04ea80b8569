"""The OpenAI encoder writes an OpenAI upstream's unmodelled answer fields (``Native``) back,
and a refusal; never another dialect's, nor what describes a text a stage rewrote."""

from __future__ import annotations

from typing import Any

import orjson

from modelyard.core.chat import ChatResult, Choice, Message, Native, TextPart, Usage
from modelyard.core.events import (
    Finished,
    NativeDelta,
    RefusalDelta,
    TextDelta,
    UsageReport,
)
from modelyard.protocols.openai import encode

LOGPROBS = {"content": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": []}]}
CITATION = {"type": "url_citation", "url_citation": {"start_index": 0, "end_index": 2}}
FIELDS = {"logprobs": LOGPROBS, "message": {"annotations": [CITATION]}}


def _body(result: ChatResult) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(encode.completion_json(result, "id", 1, "dep"))
    return body


def _result(text: str, native: Native | None, **kw: Any) -> ChatResult:
    message = Message("assistant", (TextPart(text),) if text else (), **kw)
    return ChatResult([Choice(0, message, "stop", native)], None)


def test_an_openai_upstreams_fields_are_written_back():
    choice = _body(_result("Hi", Native("openai", FIELDS, "Hi")))["choices"][0]
    assert choice["logprobs"] == LOGPROBS
    assert choice["message"]["annotations"] == [CITATION]
    assert choice["message"]["content"] == "Hi"


def test_another_dialects_fields_are_left_out():
    choice = _body(_result("Hi", Native("anthropic", FIELDS, "Hi")))["choices"][0]
    assert choice["logprobs"] is None
    assert "annotations" not in choice["message"]


def test_fields_of_a_rewritten_text_are_left_out():
    fields = {**FIELDS, "content_filter_results": {"hate": {"filtered": False}}}
    choice = _body(_result("[redacted]", Native("openai", fields, "Hi")))["choices"][0]
    assert choice["logprobs"] is None
    assert "annotations" not in choice["message"]
    assert choice["content_filter_results"] == {"hate": {"filtered": False}}


def test_a_refusal_is_written():
    message = _body(_result("", None, refusal="I can't."))["choices"][0]["message"]
    assert message["refusal"] == "I can't." and message["content"] is None


def test_top_level_fields_and_the_usage_details():
    raw_usage = {
        "prompt_tokens": 99,
        "completion_tokens": 99,
        "total_tokens": 198,
        "prompt_tokens_details": {"cached_tokens": 9, "audio_tokens": 5},
        "completion_tokens_details": {"accepted_prediction_tokens": 3},
    }
    result = ChatResult(
        [Choice(0, Message("assistant", (TextPart("Hi"),)), "stop")],
        Usage(input_tokens=4, output_tokens=2, cached_input_tokens=1),
        native=Native("openai", {"service_tier": "flex", "usage": raw_usage}),
    )
    body = _body(result)
    assert body["service_tier"] == "flex"
    assert body["usage"] == {  # the counts are the core's, the details the upstream's
        "prompt_tokens": 4,
        "completion_tokens": 2,
        "total_tokens": 6,
        "prompt_tokens_details": {"cached_tokens": 1, "audio_tokens": 5},
        "completion_tokens_details": {"accepted_prediction_tokens": 3, "reasoning_tokens": 0},
    }
    result.native = Native("gemini", {"service_tier": "flex", "usage": raw_usage})
    assert "service_tier" not in _body(result)


def _frames(events: list[Any], include_usage: bool = False) -> list[dict[str, Any]]:
    encoder = encode.ChunkEncoder("id", 1, "dep", include_usage)
    raw = b"".join(encoder.encode(e) or b"" for e in events) + encoder.close()
    return [orjson.loads(f[6:]) for f in raw.split(b"\n\n") if f.startswith(b"data: {")]


def test_streamed_fields_go_in_the_chunk_of_what_follows():
    frames = _frames(
        [
            NativeDelta(Native("openai", {"logprobs": LOGPROBS}, "Hi")),
            TextDelta("Hi"),
            TextDelta(" there"),
            Finished("stop"),
        ]
    )
    assert [f["choices"][0]["logprobs"] for f in frames] == [LOGPROBS, None, None]
    assert frames[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hi"}


def test_streamed_fields_of_a_rewritten_text_are_left_out():
    frames = _frames(
        [NativeDelta(Native("openai", {"logprobs": LOGPROBS}, "Hi")), TextDelta("[x]")]
    )
    assert frames[0]["choices"][0]["logprobs"] is None


def test_fields_with_nothing_after_them_still_go_out():
    empty: dict[str, Any] = {"logprobs": {"content": [], "refusal": None}}
    frames = _frames(
        [
            NativeDelta(Native("openai", empty)),
            NativeDelta(Native("openai", {"delta": {"annotations": [CITATION]}})),
        ]
    )
    assert frames[0]["choices"][0]["logprobs"] == empty["logprobs"]
    assert frames[0]["choices"][0]["delta"]["role"] == "assistant"
    assert frames[1]["choices"][0]["delta"] == {"annotations": [CITATION]}


def test_another_dialects_streamed_fields_are_ignored():
    frames = _frames([NativeDelta(Native("anthropic", {"logprobs": LOGPROBS})), TextDelta("Hi")])
    assert [f["choices"][0]["logprobs"] for f in frames] == [None]


def test_a_streamed_refusal():
    frames = _frames([RefusalDelta("I can't"), RefusalDelta("."), Finished("stop")])
    first = frames[0]["choices"][0]["delta"]
    assert first == {"role": "assistant", "refusal": "I can't", "content": None}
    assert frames[1]["choices"][0]["delta"] == {"refusal": "."}


def test_streamed_usage_details():
    raw = {"prompt_tokens": 1, "completion_tokens_details": {"audio_tokens": 2}}
    report = UsageReport(Usage(input_tokens=3, output_tokens=1), Native("openai", raw))
    usage = _frames([TextDelta("Hi"), report], include_usage=True)[-1]["usage"]
    assert usage["prompt_tokens"] == 3
    assert usage["completion_tokens_details"] == {"audio_tokens": 2, "reasoning_tokens": 0}


REFUSAL_LOGPROBS = {"content": None, "refusal": LOGPROBS["content"]}


def test_fields_of_a_rewritten_refusal_are_left_out():
    """A refusal's tokens have log probabilities too: once a guard rewrote the refusal they
    would tell what it cut; the refusal as the upstream wrote it keeps them."""
    native = Native("openai", {"logprobs": REFUSAL_LOGPROBS}, None, "Hi")
    rewritten = _body(_result("", native, refusal="[x]"))["choices"][0]
    assert rewritten["logprobs"] is None and rewritten["message"]["refusal"] == "[x]"
    kept = _body(_result("", native, refusal="Hi"))["choices"][0]
    assert kept["logprobs"] == REFUSAL_LOGPROBS


def test_streamed_fields_of_a_rewritten_refusal_are_left_out():
    native = Native("openai", {"logprobs": REFUSAL_LOGPROBS}, None, "Hi")
    frames = _frames([NativeDelta(native), RefusalDelta("[x]")])
    assert frames[0]["choices"][0]["logprobs"] is None
    assert _frames([NativeDelta(native), RefusalDelta("Hi")])[0]["choices"][0]["logprobs"] == (
        REFUSAL_LOGPROBS
    )
