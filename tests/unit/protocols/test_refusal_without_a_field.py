"""A refusal (``Message.refusal``, ``RefusalDelta``) reaches a client whose dialect has no
refusal field as what the model said: Gemini as a text part with the upstream's finish reason,
legacy completions as the choice's text; whole and streamed alike."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard.core.chat import ChatResult, Choice, FinishReason, Message, TextPart
from modelyard.core.events import Finished, RefusalDelta, StreamEvent, TextDelta
from modelyard.protocols.gemini import encode as gemini
from modelyard.protocols.gemini.stream import StreamEncoder
from modelyard.protocols.openai.completions import CompletionChunkEncoder, completion_json

REFUSAL = "I can't help with that."


def _result(reason: FinishReason, text: str = "") -> ChatResult:
    content = (TextPart(text),) if text else ()
    return ChatResult([Choice(0, Message("assistant", content, refusal=REFUSAL), reason)], None)


@pytest.mark.parametrize(("reason", "finish"), [("stop", "STOP"), ("content_filter", "SAFETY")])
def test_gemini_a_refusal_is_a_text_part_with_the_upstreams_finish(reason: Any, finish: str):
    body = orjson.loads(gemini.response_json(_result(reason), "dep", "r1"))
    (candidate,) = body["candidates"]
    assert candidate["content"]["parts"] == [{"text": REFUSAL}]
    assert candidate["finishReason"] == finish


def test_gemini_a_refusal_after_text_is_a_part_of_its_own():
    body = orjson.loads(gemini.response_json(_result("stop", "Well."), "dep", "r1"))
    assert body["candidates"][0]["content"]["parts"] == [{"text": "Well."}, {"text": REFUSAL}]


@pytest.mark.parametrize("sse", [True, False])
def test_gemini_a_streamed_refusal_is_text_parts(sse: bool):
    enc = StreamEncoder("dep", "r1", sse=sse)
    events = (RefusalDelta("I can't"), RefusalDelta(""), RefusalDelta(" help."), Finished("stop"))
    frames = [enc.encode(e) for e in events]
    assert frames[1] is None and frames[3] is None  # nothing to say: no chunk
    raw = enc.start() + b"".join(f for f in frames if f) + enc.close()
    chunks = (
        [orjson.loads(line[6:]) for line in raw.split(b"\r\n\r\n") if line.startswith(b"data: ")]
        if sse
        else orjson.loads(raw)
    )
    parts = [p for c in chunks for p in c["candidates"][0].get("content", {}).get("parts", [])]
    assert "".join(p["text"] for p in parts) == "I can't help."
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_completions_a_refusal_is_the_text():
    body = orjson.loads(completion_json(_result("stop"), "cmpl-1", 0, "dep"))
    assert body["choices"][0]["text"] == REFUSAL
    assert body["choices"][0]["finish_reason"] == "stop"
    after = orjson.loads(completion_json(_result("stop", "Well. "), "cmpl-1", 0, "dep"))
    assert after["choices"][0]["text"] == "Well. " + REFUSAL


def test_completions_a_streamed_refusal_is_text_chunks():
    enc = CompletionChunkEncoder("cmpl-1", 0, "dep", include_usage=False)
    events: list[StreamEvent] = [
        TextDelta("Well. "),
        RefusalDelta("I can't"),
        RefusalDelta(""),
        RefusalDelta(" help with that."),
        Finished("stop"),
    ]
    raw = enc.start() + b"".join(enc.encode(e) or b"" for e in events) + enc.close()
    chunks = [orjson.loads(line[6:]) for line in raw.split(b"\n\n") if line.startswith(b"data: {")]
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Well. " + REFUSAL
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
