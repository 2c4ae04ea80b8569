"""A chat job's events as the worker answers them: OpenAI's body and chunks, as the gateway's."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import MutableMapping
from typing import Any

import orjson

from modelyard.core.chat import Usage
from modelyard.core.errors import InvalidRequest
from modelyard.core.events import Finished, TextDelta, UsageReport
from modelyard.local.asgi import Responder
from modelyard.local.chat_response import collect_chat, stream_chat
from modelyard.local.events import ChatEvent, ChatRun, GenerationFailed
from modelyard.local.wire import parse_chat


def _run(*events: ChatEvent) -> ChatRun:
    queue: asyncio.Queue[ChatEvent] = asyncio.Queue()
    for event in events:
        queue.put_nowait(event)
    return ChatRun(queue, threading.Event())


class _Sent:
    def __init__(self) -> None:
        self.messages: list[MutableMapping[str, Any]] = []

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        self.messages.append(message)

    def payloads(self) -> list[Any]:
        body = b"".join(m.get("body", b"") for m in self.messages[1:]).decode()
        frames = [f.removeprefix("data: ") for f in body.split("\n\n") if f]
        return [f if f == "[DONE]" else orjson.loads(f) for f in frames]


_USAGE = UsageReport(Usage(input_tokens=5, output_tokens=3))


async def test_a_whole_completion_has_every_choice_and_the_usage() -> None:
    params = parse_chat({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2})
    run = _run(
        TextDelta("Hel", 0),
        TextDelta("lo", 0),
        Finished("stop", 0),
        TextDelta("Hi", 1),
        Finished("length", 1),
        _USAGE,
    )
    body = orjson.loads(await collect_chat(params, run))
    assert body["object"] == "chat.completion" and body["model"] == "m"
    assert [(c["message"]["content"], c["finish_reason"]) for c in body["choices"]] == [
        ("Hello", "stop"),
        ("Hi", "length"),
    ]
    assert body["usage"]["total_tokens"] == 8


async def test_a_stream_is_chunks_then_usage_then_done() -> None:
    params = parse_chat(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    sent = _Sent()
    await stream_chat(Responder(sent), params, _run(TextDelta("Hi"), Finished("stop"), _USAGE))
    assert sent.messages[0]["status"] == 200
    first, finish, usage, done = sent.payloads()
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "Hi"}
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 3
    assert done == "[DONE]"
    assert len({first["id"], finish["id"], usage["id"]}) == 1


async def test_a_failure_after_the_first_event_is_an_error_frame() -> None:
    params = parse_chat(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    )
    sent = _Sent()
    failure = GenerationFailed(InvalidRequest("too long", param="messages"))
    await stream_chat(Responder(sent), params, _run(TextDelta("Hi"), failure))
    chunk, error = sent.payloads()
    assert chunk["choices"][0]["delta"]["content"] == "Hi"
    assert error["error"]["message"] == "too long"
    assert sent.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
