"""The Responses wire layer: decoding (fields, items, tools, limits), items → core messages,
the ``Response`` object and the stream's event sequence."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard.core.chat import (
    ChatResult,
    Choice,
    Message,
    NamedToolChoice,
    TextPart,
    ToolCall,
    Usage,
)
from modelyard.core.errors import InvalidRequest, UpstreamConnectionError
from modelyard.core.events import Finished, ReasoningDelta, TextDelta, ToolCallDelta, UsageReport
from modelyard.protocols.openai.responses.decode import decode_response_request
from modelyard.protocols.openai.responses.encode import Envelope, result_json
from modelyard.protocols.openai.responses.items import to_messages
from modelyard.protocols.openai.responses.stream import ResponseStream


def _decode(**fields: Any) -> Any:
    return decode_response_request({"model": "m", "input": "hi", **fields})


def _param(**fields: Any) -> str | None:
    with pytest.raises(InvalidRequest) as caught:
        _decode(**fields)
    return caught.value.param


def test_string_input_is_one_user_message_item():
    req = _decode(instructions="be brief")
    assert [m.role for m in req.chat.messages] == ["developer", "user"]
    assert req.items[0]["type"] == "message" and req.items[0]["id"].startswith("msg_")
    assert req.items[0]["content"] == [{"type": "input_text", "text": "hi"}]
    assert req.store and req.chat.include_usage


def test_items_fold_into_assistant_turns_with_reasoning_and_calls():
    items = [
        {"role": "user", "content": "weather?"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}],
         "encrypted_content": "sig"},
        {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "b", "arguments": "{}",
         "namespace": "ns"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": [
            {"type": "input_text", "text": "two"}]},
    ]  # fmt: skip
    messages = _decode(input=items).chat.messages
    assert [m.role for m in messages] == ["user", "assistant", "tool", "tool"]
    turn = messages[1]
    assert [c.name for c in turn.tool_calls] == ["a", "ns__b"]
    assert (turn.reasoning, turn.reasoning_signature) == ("think", "sig")
    assert messages[3].text() == "two" and messages[3].tool_call_id == "c2"


def test_an_assistant_message_then_calls_is_one_turn():
    items = [
        {"role": "user", "content": "x"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "ok"}],
        },
        {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"},
    ]
    messages = to_messages(_decode(input=items).items, _decode().names)
    assert len(messages) == 2 and messages[1].text() == "ok"
    assert messages[1].tool_calls[0].id == "c1"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"nope": 1}, "nope"),
        ({"input": [{"type": "web_search_call"}]}, "input[0].type"),
        (
            {"input": [{"type": "message", "role": "user", "content": "x", "extra": 1}]},
            "input[0].extra",
        ),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input[0].content[0].type",
        ),
        ({"tools": [{"type": "custom", "name": "x"}]}, "tools[0].type"),
        ({"tool_choice": {"type": "file_search"}}, "tool_choice.type"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"metadata": {"k" * 65: "v"}}, "metadata." + "k" * 64),
        ({"metadata": {"k": 1}}, "metadata.k"),
        ({"include": ["message.output_text.logprobs"]}, "include[0]"),
        ({"truncation": "sometimes"}, "truncation"),
        ({"max_output_tokens": 3}, "max_output_tokens"),
        ({"previous_response_id": "resp_1", "conversation": "conv_1"}, "previous_response_id"),
        ({"prompt": {"id": "p"}}, "prompt"),
    ],
)
def test_bad_fields_are_refused_by_name(fields: dict[str, Any], param: str):
    assert _param(**fields) == param


def test_tools_choice_format_and_passed_fields():
    req = _decode(
        tools=[
            {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True},
            {"type": "web_search"},
            {"type": "namespace", "name": "ns", "description": "d",
             "tools": [{"type": "function", "name": "g"}]},
        ],
        tool_choice={"type": "function", "name": "g", "namespace": "ns"},
        text={"format": {"type": "json_schema", "name": "o", "schema": {"type": "object"},
                         "strict": True}, "verbosity": "low"},
        reasoning={"effort": "high", "summary": "auto"},
        prompt_cache_key="abc",
        client_metadata={"x": "y" * 2000},
    )  # fmt: skip
    assert [t.name for t in req.chat.tools] == ["f", "ns__g"]
    assert req.hosted == ("web_search",)
    assert req.chat.tool_choice == NamedToolChoice("ns__g")
    assert req.chat.response_format.kind == "json_schema"
    assert req.chat.extra == {
        "prompt_cache_key": "abc",
        "reasoning_effort": "high",
        "verbosity": "low",
    }
    assert req.names.split("ns__g") == ("ns", "g")


def _result(message: Message, reason: Any = "stop") -> ChatResult:
    return ChatResult([Choice(0, message, reason)], Usage(10, 5, 2, 0, 1))


def test_result_object_has_items_usage_and_status():
    req = _decode(tools=[{"type": "namespace", "name": "ns", "description": "d",
                          "tools": [{"type": "function", "name": "g"}]}])  # fmt: skip
    message = Message(
        "assistant", (TextPart("hello"),), tool_calls=(ToolCall("call_1", "ns__g", "{}"),),
        reasoning="why", reasoning_signature="sig",
    )  # fmt: skip
    body, output = result_json(Envelope(req), _result(message, "tool_calls"))
    assert [i["type"] for i in output] == ["reasoning", "message", "function_call"]
    call = output[2]
    assert (call["call_id"], call["name"], call["namespace"]) == ("call_1", "g", "ns")
    assert call["id"] != call["call_id"]
    assert output[0]["encrypted_content"] == "sig"
    assert body["status"] == "completed" and body["usage"]["total_tokens"] == 15
    assert body["usage"]["input_tokens_details"]["cached_tokens"] == 2
    assert body["usage"]["output_tokens_details"]["reasoning_tokens"] == 1
    cut, _ = result_json(Envelope(req), _result(Message("assistant", (TextPart("h"),)), "length"))
    assert cut["status"] == "incomplete"
    assert cut["incomplete_details"] == {"reason": "max_output_tokens"}


def _events(frames: bytes) -> list[dict[str, Any]]:
    out = []
    for chunk in frames.split(b"\n\n"):
        if chunk:
            kind, data = chunk.split(b"\n", 1)
            event = orjson.loads(data.removeprefix(b"data: "))
            assert kind == b"event: " + event["type"].encode()
            out.append(event)
    return out


def test_stream_sequence_and_final_response():
    writer = ResponseStream(Envelope(_decode()))
    frames = writer.start()
    for event in (
        ReasoningDelta("hm"),
        ReasoningDelta("", signature="sig"),
        TextDelta("Hel"),
        TextDelta("lo"),
        ToolCallDelta(0, "", "call_a", "f"),
        ToolCallDelta(1, '{"x":', "call_b", "g"),
        ToolCallDelta(0, "{}"),  # a late piece of a call already closed
        ToolCallDelta(1, "1}"),
        Finished("tool_calls"),
        UsageReport(Usage(3, 4)),
    ):
        frames += writer.encode(event)
    frames += writer.close() + writer.terminal()
    events = _events(frames)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert (
        kinds.count("response.output_item.added") == kinds.count("response.output_item.done") == 4
    )
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    assert final["output"][0]["encrypted_content"] == "sig"
    assert final["output"][1]["content"][0]["text"] == "Hello"
    assert [i["arguments"] for i in final["output"][2:]] == ["{}", '{"x":1}']
    assert final["usage"]["total_tokens"] == 7


def test_stream_failure_ends_with_response_failed():
    writer = ResponseStream(Envelope(_decode()))
    frames = writer.start() + writer.encode(TextDelta("par"))
    frames += writer.failed(UpstreamConnectionError("connection dropped")) + writer.terminal()
    events = _events(frames)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"] == {
        "code": "server_error",
        "message": "connection dropped",
    }
    assert events[-2]["type"] == "response.output_item.done"  # the open item was closed first


def test_an_assistant_refusal_part_is_the_messages_refusal():
    """A turn that declined, sent back (or stored): the message's refusal, which an OpenAI
    upstream gets as ``refusal`` and any other as the turn's text."""
    items = [
        {"role": "user", "content": "x"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "refusal", "refusal": "I can't."}],
        },
        {"role": "user", "content": "why?"},
    ]
    messages = _decode(input=items).chat.messages
    assert messages[1].refusal == "I can't." and messages[1].content == ()
    assert messages[0].refusal is None and messages[2].refusal is None
