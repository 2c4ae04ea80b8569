"""An Anthropic upstream's own stop (``pause_turn``, a matched stop sequence, the context window,
a refusal's details) reaches a Messages client as the upstream wrote it, whole and streamed;
the core's finish reason, and every other client, keep the folded one; a finish a stage
changed wins."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
from tests.fakes.anthropic_messages import build_answer, message_body
from tests.fakes.anthropic_stream import stream_events
from tests.fakes.anthropic_wire import AnthropicIds

from modelyard.core.chat import ChatResult, Native, TextPart
from modelyard.core.errors import UpstreamError
from modelyard.core.events import Finished, NativeDelta, StreamEvent
from modelyard.protocols.anthropic import encode
from modelyard.protocols.anthropic.stream import StreamEncoder
from modelyard.protocols.openai.encode import ChunkEncoder, completion_json
from modelyard.providers.anthropic.response import parse_message
from modelyard.providers.anthropic.stream import StreamState

LABEL = "anthropic"
SEARCH = {"type": "web_search_20250305", "name": "web_search"}
DETAILS = {"type": "refusal", "category": "cyber", "explanation": "Could enable malware."}


def _request(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def _answers() -> dict[str, dict[str, Any]]:
    """The fake upstream's answers that stop for a reason the core folds."""
    ids = AnthropicIds()
    requests = {
        "stop_sequence": _request("one two END three", stop_sequences=["END"]),
        "pause_turn": _request("search the web at length: Paris", tools=[SEARCH]),
        "model_context_window_exceeded": _request("fill the context with this"),
    }
    return {k: message_body(build_answer(r, ids, set())) for k, r in requests.items()}


def _refusal() -> dict[str, Any]:
    data = message_body(build_answer(_request("please refuse"), AnthropicIds(), set()))
    return {**data, "stop_details": DETAILS}


CORE = {
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}


@pytest.mark.parametrize("reason", sorted(CORE))
def test_a_whole_answer_keeps_its_own_stop_for_a_messages_client(reason: str) -> None:
    data = _answers()[reason]
    assert data["stop_reason"] == reason
    result = parse_message(data, None, LABEL)
    assert result.choices[0].finish_reason == CORE[reason]
    body = orjson.loads(encode.message_json(result, "msg_x", "dep"))
    assert body["stop_reason"] == reason
    assert body["stop_sequence"] == data["stop_sequence"]
    assert body["content"] == data["content"]


def test_the_matched_stop_sequence_is_named():
    data = _answers()["stop_sequence"]
    body = orjson.loads(encode.message_json(parse_message(data, None, LABEL), "m", "dep"))
    assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "END")
    assert body["content"] == [{"type": "text", "text": "echo: one two "}]


def test_a_refusal_keeps_its_details():
    result = parse_message(_refusal(), None, LABEL)
    assert result.choices[0].finish_reason == "content_filter"
    body = orjson.loads(encode.message_json(result, "msg_x", "dep"))
    assert body["stop_reason"] == "refusal"
    assert body["stop_details"] == DETAILS


@pytest.mark.parametrize("reason", ["end_turn", "tool_use", "max_tokens"])
def test_a_plain_stop_carries_nothing_more(reason: str) -> None:
    data = {
        "id": "msg_1",
        "model": "m",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    assert parse_message(data, None, LABEL).choices[0].native is None


def test_other_clients_get_the_core_finish_reason():
    for reason, data in _answers().items():
        body = orjson.loads(completion_json(parse_message(data, None, LABEL), "c", 0, "dep"))
        assert body["choices"][0]["finish_reason"] == CORE[reason]
        assert reason.encode() not in orjson.dumps(body)


def test_a_rewritten_answer_keeps_its_stop():
    result = parse_message(_answers()["stop_sequence"], None, LABEL)
    choice = result.choices[0]
    choice.message = replace(choice.message, content=(TextPart("[redacted]"),))
    body = orjson.loads(encode.message_json(ChatResult([choice], None), "m", "dep"))
    assert body["content"] == [{"type": "text", "text": "[redacted]"}]
    assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "END")


@pytest.mark.parametrize(
    ("finish", "expected"), [("content_filter", "refusal"), ("length", "max_tokens")]
)
def test_a_finish_a_stage_changed_wins(finish: Any, expected: str) -> None:
    result = parse_message(_answers()["pause_turn"], None, LABEL)
    result.choices[0].finish_reason = finish
    body = orjson.loads(encode.message_json(result, "m", "dep"))
    assert (body["stop_reason"], body["stop_sequence"]) == (expected, None)


def test_another_dialects_native_is_not_a_stop():
    result = parse_message(_answers()["pause_turn"], None, LABEL)
    native = result.choices[0].native
    assert native is not None
    result.choices[0].native = Native("openai", native.fields)
    body = orjson.loads(encode.message_json(result, "m", "dep"))
    assert body["stop_reason"] == "end_turn"


def _events(data: dict[str, Any]) -> list[StreamEvent]:
    """The core events the reader makes of the fake upstream's stream of ``data``."""
    state = StreamState(None, LABEL)
    answer = build_answer(_request("x"), AnthropicIds(), set())
    answer = replace(answer, stop_reason=data["stop_reason"], stop_sequence=data["stop_sequence"])
    out: list[StreamEvent] = []
    for raw in stream_events(answer):
        head, payload = raw.split(b"\n", 1)
        out.extend(state.feed(head[7:].decode(), payload[6:].strip().decode()))
    return out


def _message_delta(frames: bytes) -> dict[str, Any]:
    for chunk in frames.split(b"\n\n")[:-1]:
        data = orjson.loads(chunk.split(b"\n")[1][6:])
        if data["type"] == "message_delta":
            return dict(data["delta"])
    raise AssertionError("no message_delta")


def _encoded(events: list[StreamEvent]) -> dict[str, Any]:
    encoder = StreamEncoder("msg_x", "dep")
    return _message_delta(b"".join(encoder.encode(e) for e in events) + encoder.close())


@pytest.mark.parametrize("reason", sorted(CORE))
def test_a_stream_keeps_its_own_stop_for_a_messages_client(reason: str) -> None:
    data = _answers()[reason]
    events = _events(data)
    assert isinstance(events[-1], Finished) and events[-1].reason == CORE[reason]
    delta = _encoded(events)
    assert (delta["stop_reason"], delta["stop_sequence"]) == (reason, data["stop_sequence"])


def test_a_plain_stream_carries_nothing_more():
    events = _events({"stop_reason": "end_turn", "stop_sequence": None})
    assert not any(isinstance(e, NativeDelta) for e in events)
    assert _encoded(events) == {"stop_reason": "end_turn", "stop_sequence": None}


def test_a_streamed_finish_a_stage_changed_wins():
    events = _events(_answers()["stop_sequence"])
    assert isinstance(events[-1], Finished)
    events[-1] = Finished("length")
    assert _encoded(events) == {"stop_reason": "max_tokens", "stop_sequence": None}


def test_a_streamed_refusal_keeps_its_details():
    state = StreamState(None, LABEL)
    stop = {"stop_reason": "refusal", "stop_sequence": None, "stop_details": DETAILS}
    upstream: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 3}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "No"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": stop, "usage": {"output_tokens": 2}},
        {"type": "message_stop"},
    ]
    events = [e for raw in upstream for e in state.feed(None, orjson.dumps(raw).decode())]
    assert events[-1] == Finished("content_filter")
    assert _encoded(events) == {"stop_reason": "refusal", "stop_sequence": None, **stop}


def test_another_encoder_writes_the_core_finish_of_a_stream():
    events = _events(_answers()["pause_turn"])
    openai = ChunkEncoder("chatcmpl-x", 0, "dep", include_usage=False)
    frames = b"".join(openai.encode(e) or b"" for e in events) + openai.close()
    assert b'"finish_reason":"stop"' in frames and b"pause_turn" not in frames


def test_a_stop_reason_that_is_no_string_is_a_malformed_answer():
    data = {**_answers()["stop_sequence"], "stop_reason": ["stop_sequence"]}
    with pytest.raises(UpstreamError, match="malformed message"):
        parse_message(data, None, LABEL)
