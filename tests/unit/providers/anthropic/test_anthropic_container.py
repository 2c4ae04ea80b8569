"""The code execution tool's ``container`` (``id``, ``expires_at``) in an Anthropic upstream's
answer reaches a Messages client as it came, whole (top level) and streamed (the
``message_delta``'s ``delta.container``), with or without a folded stop; other clients' answers
and plain answers carry nothing more."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.fakes.anthropic_messages import build_answer, message_body
from tests.fakes.anthropic_stream import stream_events
from tests.fakes.anthropic_wire import AnthropicIds

from modelyard.core.events import NativeDelta, StreamEvent
from modelyard.protocols.anthropic import encode
from modelyard.protocols.anthropic.stream import StreamEncoder
from modelyard.protocols.openai.encode import completion_json
from modelyard.providers.anthropic.response import parse_message
from modelyard.providers.anthropic.stream import StreamState

CODE = {"type": "code_execution_20250825", "name": "code_execution"}


def _request(text: str, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": text}]
    return {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": messages, **extra}


def _answer(text: str = "run it", **extra: Any) -> Any:
    return build_answer(_request(text, tools=[CODE], **extra), AnthropicIds(), set())


def _streamed(answer: Any) -> list[StreamEvent]:
    state = StreamState(None, "anthropic")
    out: list[StreamEvent] = []
    for raw in stream_events(answer):
        head, payload = raw.split(b"\n", 1)
        out.extend(state.feed(head[7:].decode(), payload[6:].strip().decode()))
    return out


def _message_delta(events: list[StreamEvent]) -> dict[str, Any]:
    encoder = StreamEncoder("msg_x", "dep")
    frames = b"".join(encoder.encode(e) for e in events) + encoder.close()
    for chunk in frames.split(b"\n\n")[:-1]:
        data = orjson.loads(chunk.split(b"\n")[1][6:])
        if data["type"] == "message_delta":
            return dict(data["delta"])
    raise AssertionError("no message_delta")


@pytest.mark.parametrize("text", ["run it", "fill the context now"], ids=["end_turn", "folded"])
def test_a_whole_answer_keeps_its_container(text: str) -> None:
    data = message_body(_answer(text))
    result = parse_message(data, None, "anthropic")
    body = orjson.loads(encode.message_json(result, "msg_x", "dep"))
    assert body["container"] == data["container"]
    assert body["stop_reason"] == data["stop_reason"]
    assert "container" not in orjson.loads(completion_json(result, "id", 0, "dep"))


def test_a_named_container_is_the_one_reported() -> None:
    data = message_body(_answer(container="container_mine"))
    result = parse_message(data, None, "anthropic")
    assert orjson.loads(encode.message_json(result, "m", "d"))["container"]["id"] == (
        "container_mine"
    )


@pytest.mark.parametrize("text", ["run it", "fill the context now"], ids=["end_turn", "folded"])
def test_a_stream_keeps_its_container(text: str) -> None:
    answer = _answer(text)
    delta = _message_delta(_streamed(answer))
    assert delta["container"] == answer.container
    assert delta["stop_reason"] == answer.stop_reason


def test_a_plain_answer_carries_no_container() -> None:
    answer = build_answer(_request("hello"), AnthropicIds(), set())
    assert answer.container is None
    result = parse_message(message_body(answer), None, "anthropic")
    assert result.native is None
    assert "container" not in orjson.loads(encode.message_json(result, "m", "d"))
    events = _streamed(answer)
    assert not any(isinstance(e, NativeDelta) for e in events)
    assert "container" not in _message_delta(events)
