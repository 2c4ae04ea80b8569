"""Claude's parts through Converse for a Messages client (``providers.bedrock.claude``): the
redacted thinking, the cited text and the folded stops the fake Bedrock sends, parsed (whole
and streamed), encoded for a Messages client and for an OpenAI one, and a client's turn with
``redacted_thinking`` sent back as ``redactedContent``; a plain answer carries nothing more."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard.core.chat import ChatRequest, Message, TextPart, ToolCall
from modelyard.core.errors import InvalidRequest
from modelyard.core.events import NativeDelta, StreamEvent
from modelyard.protocols.anthropic import encode
from modelyard.protocols.anthropic.decode import decode_messages
from modelyard.protocols.anthropic.stream import StreamEncoder
from modelyard.protocols.openai.encode import completion_json
from modelyard.providers.bedrock import codec
from modelyard.providers.bedrock.eventstream import EventStreamDecoder
from modelyard.providers.bedrock.response import ResponseInfo, parse_converse
from modelyard.providers.bedrock.stream import StreamTranslator
from tests.fakes.bedrock_converse import CITED, REDACTED, build_answer, converse_body, stream_frames

MODEL = "anthropic.claude-sonnet-4-5-v1:0"
INFO = ResponseInfo(None, "br", MODEL)
THINKING = {"thinking": {"type": "enabled", "budget_tokens": 1024}}


def _body(text: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"text": text}]}], **extra}


def _whole(body: dict[str, Any]) -> dict[str, Any]:
    result = parse_converse(converse_body(build_answer(body, MODEL, 1)), INFO)
    openai = orjson.loads(completion_json(result, "id", 0, "dep"))
    assert "citations" not in str(openai) and "redacted" not in str(openai)
    return dict(orjson.loads(encode.message_json(result, "msg_x", "dep")))


def _events(body: dict[str, Any]) -> list[StreamEvent]:
    translator = StreamTranslator(None, "br")
    frames = EventStreamDecoder("br").feed(b"".join(stream_frames(build_answer(body, MODEL, 1))))
    return [e for f in frames for e in translator.frame(f)]


def _streamed(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The Messages SSE payloads of the gateway's stream of the fake's answer to ``body``."""
    encoder = StreamEncoder("msg_x", "dep")
    raw = b"".join(encoder.encode(e) for e in _events(body)) + encoder.close()
    return [orjson.loads(c.split(b"\n")[1][6:]) for c in raw.split(b"\n\n")[:-1]]


def test_redacted_thinking_is_a_redacted_thinking_block() -> None:
    body = _body("think in secret", additionalModelRequestFields=THINKING)
    content = _whole(body)["content"]
    assert [b["type"] for b in content] == ["redacted_thinking", "thinking", "text"]
    assert content[0]["data"] == REDACTED and content[1]["signature"] == "sig-fake-0001"


def test_a_streamed_redacted_block_starts_whole() -> None:
    body = _body("think in secret", additionalModelRequestFields=THINKING)
    starts = [p["content_block"] for p in _streamed(body) if p["type"] == "content_block_start"]
    assert starts[0] == {"type": "redacted_thinking", "data": REDACTED}
    assert [s["type"] for s in starts] == ["redacted_thinking", "thinking", "text"]


def test_a_cited_text_is_text_for_everyone_and_cited_for_messages_clients() -> None:
    data = converse_body(build_answer(_body("cite the source"), MODEL, 1))
    result = parse_converse(data, INFO)
    assert result.choices[0].message.text().endswith(CITED)
    cited = orjson.loads(encode.message_json(result, "m", "d"))["content"][-1]
    assert cited["text"] == CITED
    assert cited["citations"] == [
        {
            "type": "char_location",
            "cited_text": CITED,
            "document_index": 0,
            "document_title": "Grass facts",
            "start_char_index": 0,
            "end_char_index": len(CITED),
        }
    ]


def test_a_web_citation_is_left_out_and_its_text_stays() -> None:
    data = converse_body(build_answer(_body("cite the source"), MODEL, 1))
    block = data["output"]["message"]["content"][-1]["citationsContent"]
    block["citations"][0]["location"] = {"web": {"url": "https://example.com/"}}
    cited = orjson.loads(encode.message_json(parse_converse(data, INFO), "m", "d"))["content"]
    assert cited[-1] == {"type": "text", "text": CITED}


@pytest.mark.parametrize(
    ("text", "stop", "sequence"),
    [
        ("fill the context", "model_context_window_exceeded", None),
        ("a END b", "stop_sequence", "END"),
    ],
)
def test_a_folded_stop_keeps_its_own_value(text: str, stop: str, sequence: str | None) -> None:
    request = ChatRequest(model="dep", messages=[Message("user", (TextPart(text),))], stop=("END",))
    body = codec.build_request(request, MODEL, codec.BuildOptions("br")).body
    assert body["additionalModelResponseFieldPaths"] == ["/stop_sequence"]
    whole = _whole(body)
    assert (whole["stop_reason"], whole["stop_sequence"]) == (stop, sequence)
    closing = next(p for p in _streamed(body) if p["type"] == "message_delta")["delta"]
    assert (closing["stop_reason"], closing["stop_sequence"]) == (stop, sequence)


def test_the_clients_own_response_paths_stay() -> None:
    extra = {"additionalModelResponseFieldPaths": ["/x"]}
    request = ChatRequest(
        model="dep", messages=[Message("user", (TextPart("hi"),))], stop=("END",), extra=extra
    )
    body = codec.build_request(request, MODEL, codec.BuildOptions("br")).body
    assert body["additionalModelResponseFieldPaths"] == ["/x", "/stop_sequence"]


@pytest.mark.parametrize("text", ["please refuse", "trip the guardrail"])
def test_a_filtered_answer_is_a_refusal(text: str) -> None:
    assert _whole(_body(text))["stop_reason"] == "refusal"


def test_a_plain_answer_carries_nothing_more() -> None:
    result = parse_converse(converse_body(build_answer(_body("hello"), MODEL, 1)), INFO)
    assert result.choices[0].native is None
    assert not any(isinstance(e, NativeDelta) for e in _events(_body("hello")))


def _history(turn: list[dict[str, Any]]) -> ChatRequest:
    return decode_messages(
        {
            "model": "dep",
            "max_tokens": 64,
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": turn},
                {"role": "user", "content": "again"},
            ],
        }
    )


def test_a_clients_redacted_turn_goes_back_as_redacted_content() -> None:
    turn: list[dict[str, Any]] = [
        {"type": "redacted_thinking", "data": REDACTED},
        {"type": "thinking", "thinking": "hm", "signature": "sig"},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
    ]
    request = _history(turn)
    assert request.messages[1].tool_calls == (ToolCall("toolu_1", "f", "{}"),)
    body = codec.build_request(request, MODEL, codec.BuildOptions("br")).body
    sent = body["messages"][1]["content"]
    assert sent[0] == {"reasoningContent": {"redactedContent": REDACTED}}
    assert sent[1] == {"reasoningContent": {"reasoningText": {"text": "hm", "signature": "sig"}}}
    assert "toolUse" in sent[2]


@pytest.mark.parametrize("data", ["not base64!", "", None])
def test_a_redacted_block_without_base64_data_is_refused(data: object) -> None:
    turn: list[dict[str, Any]] = [{"type": "redacted_thinking", "data": data}]
    request = _history([*turn, {"type": "text", "text": "x"}])
    with pytest.raises(InvalidRequest) as caught:
        codec.build_request(request, MODEL, codec.BuildOptions("br"))
    assert caught.value.param == "messages[1].content[0].data"
