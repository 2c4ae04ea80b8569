"""A refusal another dialect's upstream explained (``Message.refusal``) reaches a Messages
client as this API says it: ``stop_reason: "refusal"``, the explanation as text."""

from __future__ import annotations

from typing import Any

import orjson

from modelyard.core.chat import ChatResult, Choice, Message
from modelyard.core.events import Finished, RefusalDelta
from modelyard.protocols.anthropic import encode
from modelyard.protocols.anthropic.stream import StreamEncoder


def test_a_refusal_is_a_refusal_with_its_explanation():
    message = Message("assistant", refusal="I can't help with that.")
    result = ChatResult([Choice(0, message, "stop")], None)
    body = orjson.loads(encode.message_json(result, "msg_r", "dep"))
    assert body["stop_reason"] == "refusal"
    assert body["content"] == [{"type": "text", "text": "I can't help with that."}]


def test_a_streamed_refusal():
    enc = StreamEncoder("msg_r", "dep")
    raw = enc.start()
    for event in (RefusalDelta("I can't"), RefusalDelta(" help."), Finished("stop")):
        raw += enc.encode(event)
    raw += enc.close()
    events: list[dict[str, Any]] = [
        orjson.loads(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: ")
    ]
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == "I can't help."
    [ending] = [e for e in events if e["type"] == "message_delta"]
    assert ending["delta"]["stop_reason"] == "refusal"
