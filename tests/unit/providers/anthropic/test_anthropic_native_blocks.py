"""Blocks an Anthropic upstream sends beyond the core (``redacted_thinking``, server-tool blocks,
citations) from the upstream's reader to a Messages client's encoder, and a Messages client's
turns holding them to an Anthropic upstream: kept whole and in place, or left out elsewhere."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
from tests.fakes.anthropic_messages import SEARCH_CITED, SEARCH_FOUND, build_answer, message_body
from tests.fakes.anthropic_stream import stream_events
from tests.fakes.anthropic_wire import REDACTED_DATA, AnthropicIds

from modelyard.core.chat import ChatResult, Message, TextPart
from modelyard.core.errors import InvalidRequest
from modelyard.core.events import NativeDelta, StreamEvent, TextDelta
from modelyard.protocols.anthropic import encode
from modelyard.protocols.anthropic.content import turn_messages
from modelyard.protocols.anthropic.stream import StreamEncoder
from modelyard.protocols.openai.encode import ChunkEncoder
from modelyard.providers.anthropic.messages import convert_messages
from modelyard.providers.anthropic.response import parse_message
from modelyard.providers.anthropic.stream import StreamState

LABEL = "anthropic"
REDACTED = {"type": "redacted_thinking", "data": REDACTED_DATA}
CALL = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}


def _searched_with_secret_thinking() -> dict[str, Any]:
    """The fake upstream's answer: redacted thinking, a web search, a plain and a cited text."""
    body = {
        "model": "claude-opus-4-6",
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "messages": [{"role": "user", "content": "think in secret and search the web"}],
    }
    return message_body(build_answer(body, AnthropicIds(), set()))


def _assistant(*blocks: dict[str, Any]) -> Message:
    (message,) = turn_messages({"role": "assistant", "content": list(blocks)})
    return message


# A Messages client's turn


def test_a_turn_with_redacted_thinking_is_kept_whole_and_sent_as_written():
    message = _assistant(REDACTED, CALL)
    assert message.reasoning is None and [c.id for c in message.tool_calls] == ["toolu_1"]
    assert message.native is not None and message.native.fields["content"] == [REDACTED, CALL]
    _, turns = convert_messages([Message("user", (TextPart("hi"),)), message], LABEL)
    assert turns[1] == {"role": "assistant", "content": [REDACTED, CALL]}


@pytest.mark.parametrize(
    "block",
    [
        {"type": "text", "text": "Paris.", "citations": [{"type": "char_location"}]},
        {**CALL, "cache_control": {"type": "ephemeral"}},
        {
            "type": "thinking",
            "thinking": "t",
            "signature": "s",
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "code_execution_tool_result", "tool_use_id": "srvtoolu_1", "content": {}},
    ],
    ids=["citations", "tool-cache", "thinking-cache", "server-use", "search-result", "code-result"],
)
def test_what_the_core_loses_keeps_the_turn_whole(block: dict[str, Any]) -> None:
    message = _assistant({"type": "text", "text": "Looking."}, block)
    assert message.native is not None
    assert message.native.fields["content"] == [{"type": "text", "text": "Looking."}, block]
    assert message.text().startswith("Looking.")


def test_a_plain_turn_is_not_kept_whole():
    # ``citations: null`` is what the SDKs write back for a text block without any.
    message = _assistant(
        {"type": "thinking", "thinking": "t", "signature": "s"},
        {"type": "text", "text": "ok", "citations": None},
        CALL,
    )
    assert message.native is None
    assert message.reasoning == "t" and message.text() == "ok"


def test_an_unknown_assistant_block_is_still_refused_by_name():
    with pytest.raises(InvalidRequest) as info:
        _assistant({"type": "bogus"})
    assert "bogus" in str(info.value) and "server_tool_use" in str(info.value)


def test_a_rewritten_turn_is_sent_as_the_core_has_it():
    # A stage that rewrote the text (a guardrail's redaction) makes the client's blocks stale.
    message = _assistant(REDACTED, {"type": "text", "text": "mail a@b.c"}, CALL)
    redacted = replace(message, content=(TextPart("mail [EMAIL]"),))
    _, turns = convert_messages([Message("user", (TextPart("hi"),)), redacted], LABEL)
    assert [b["type"] for b in turns[1]["content"]] == ["text", "tool_use"]
    assert turns[1]["content"][0]["text"] == "mail [EMAIL]"


# An Anthropic upstream's answer


def test_a_whole_answer_reaches_a_messages_client_block_for_block():
    data = _searched_with_secret_thinking()
    types = [b["type"] for b in data["content"]]
    assert types == [
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
        "text",
        "text",
    ]
    result = parse_message(data, None, LABEL)
    message = result.choices[0].message
    assert message.text() == SEARCH_FOUND + SEARCH_CITED
    body = orjson.loads(encode.message_json(result, "msg_x", "dep"))
    assert body["content"] == data["content"]
    assert body["stop_reason"] == "end_turn"


def test_a_plain_answer_carries_nothing_more():
    data = {
        "id": "msg_1",
        "model": "m",
        "content": [{"type": "text", "text": "hi", "citations": None}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    assert parse_message(data, None, LABEL).choices[0].native is None


def test_the_json_answer_tool_stands_as_its_text_among_the_kept_blocks():
    data = {
        "id": "msg_1",
        "model": "m",
        "content": [
            REDACTED,
            {"type": "tool_use", "id": "t", "name": "json_answer", "input": {"a": 1}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    result = parse_message(data, "json_answer", LABEL)
    body = orjson.loads(encode.message_json(result, "msg_x", "dep"))
    assert body["content"] == [REDACTED, {"type": "text", "text": '{"a":1}'}]


def test_a_rewritten_answer_is_written_as_the_core_has_it():
    result = parse_message(_searched_with_secret_thinking(), None, LABEL)
    choice = result.choices[0]
    choice.message = replace(choice.message, content=(TextPart("[redacted]"),))
    body = orjson.loads(encode.message_json(ChatResult([choice], None), "msg_x", "dep"))
    assert body["content"] == [{"type": "text", "text": "[redacted]"}]


def _upstream_events(data: dict[str, Any]) -> list[StreamEvent]:
    """The core events the reader makes of the fake upstream's stream of ``data``."""
    state = StreamState(None, LABEL)
    out: list[StreamEvent] = []
    answer = build_answer(
        {
            "model": "claude-opus-4-6",
            "max_tokens": 2048,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            "messages": [{"role": "user", "content": "think in secret and search the web"}],
        },
        AnthropicIds(),
        set(),
    )
    assert message_body(answer)["content"][2:] == data["content"][2:]
    for raw in stream_events(answer):
        head, payload = raw.split(b"\n", 1)
        out.extend(state.feed(head[7:].decode(), payload[6:].strip().decode()))
    return out


def _accumulate(frames: bytes) -> list[dict[str, Any]]:
    """The content blocks a client builds from the frames, as the SDKs accumulate them."""
    blocks: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    for chunk in frames.split(b"\n\n")[:-1]:
        data = orjson.loads(chunk.split(b"\n")[1][6:])
        if data["type"] == "content_block_start":
            assert data["index"] == len(blocks)
            blocks.append(dict(data["content_block"]))
        elif data["type"] == "content_block_delta":
            block, delta = blocks[data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "citations_delta":
                block["citations"] = [*(block.get("citations") or []), delta["citation"]]
            elif delta["type"] == "input_json_delta":
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
    for index, text in partial.items():
        blocks[index]["input"] = orjson.loads(text) if text else {}
    return blocks


def test_a_stream_reaches_a_messages_client_block_for_block():
    data = _searched_with_secret_thinking()
    events = _upstream_events(data)
    encoder = StreamEncoder("msg_x", "dep")
    frames = b"".join(encoder.encode(event) for event in events) + encoder.close()
    blocks = _accumulate(frames)
    expected = data["content"]
    # Ids are minted per answer: compare the search's call by its shape.
    assert blocks[0] == REDACTED
    assert blocks[1] == {**expected[1], "id": blocks[1]["id"]}
    assert blocks[2]["type"] == "web_search_tool_result"
    assert blocks[2]["content"] == expected[2]["content"]
    assert blocks[3:] == expected[3:]


def test_the_core_sees_the_text_and_other_encoders_ignore_the_rest():
    events = _upstream_events(_searched_with_secret_thinking())
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == SEARCH_FOUND + SEARCH_CITED
    assert any(isinstance(e, NativeDelta) for e in events)
    openai = ChunkEncoder("chatcmpl-x", 0, "dep", include_usage=False)
    frames = b"".join(openai.encode(e) or b"" for e in events)
    assert b"redacted_thinking" not in frames and b"web_search" not in frames
    assert b"capital" in frames  # the text, in its word-sized pieces
