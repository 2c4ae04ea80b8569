"""The fake OpenAI upstream, driven by the official SDK, answers in OpenAI's real shapes."""

from __future__ import annotations

import base64
import http.client
import json
import math
import struct
from typing import Any

import openai
import pytest
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessage,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)
from pydantic import BaseModel

from tests.fakes import FakeOpenAI

from .conftest import API_KEY

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "one two three"}]
WEATHER: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ALARM: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "set_alarm",
        "parameters": {
            "type": "object",
            "properties": {
                "hour": {"type": "integer"},
                "loud": {"type": "boolean"},
                "tone": {"type": "string", "enum": ["ring", "beep"]},
                "label": {"type": "string"},
                "days": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}


def function_calls(message: ChatCompletionMessage) -> list[ChatCompletionMessageFunctionToolCall]:
    """The message's tool calls, each a function call (the fake makes no custom tool calls)."""
    calls = []
    for call in message.tool_calls or []:
        assert isinstance(call, ChatCompletionMessageFunctionToolCall), call
        calls.append(call)
    return calls


def raw_post(fake: FakeOpenAI, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """POST with the standard library, to see the exact bytes the fake sends."""
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        headers = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def sse_payloads(raw: bytes) -> list[str]:
    assert raw.endswith(b"\n\n")
    frames = raw[:-2].split(b"\n\n")
    assert all(frame.startswith(b"data: ") and b"\n" not in frame for frame in frames)
    return [frame[len(b"data: ") :].decode() for frame in frames]


def test_chat_completion_has_the_documented_shape(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)
    body = json.loads(raw.text)
    assert set(body) >= {"id", "object", "created", "model", "system_fingerprint", "usage"}
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["model"] == "gpt-4o" and body["system_fingerprint"].startswith("fp_")
    choice = body["choices"][0]
    assert choice == {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "echo: one two three",
            "refusal": None,
            "annotations": [],
        },
        "logprobs": None,
        "finish_reason": "stop",
    }
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (3, 4, 7)
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-ratelimit-remaining-requests"] == "499"
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: one two three"
    assert completion.usage is not None and completion.usage.total_tokens == 7


def test_every_request_is_recorded(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=USER, temperature=0.2)
    client.models.list()
    first, second = fake.requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    assert first.headers["authorization"] == f"Bearer {API_KEY}"
    assert first.json == {"model": "gpt-4o-mini", "messages": USER, "temperature": 0.2}
    assert json.loads(first.body) == first.json
    assert (second.method, second.path, second.json) == ("GET", "/v1/models", None)
    assert fake.last_request == second
    fake.clear()
    assert fake.requests == []
    with pytest.raises(LookupError):
        _ = fake.last_request


@pytest.mark.parametrize(
    ("params", "content", "finish"),
    [
        ({"max_tokens": 2}, "echo: one", "length"),
        ({"max_completion_tokens": 1}, "echo:", "length"),
        ({"max_tokens": 4}, "echo: one two three", "stop"),
        ({"stop": [" two", "zzz"]}, "echo: one", "stop"),
        ({"stop": "three"}, "echo: one two ", "stop"),
    ],
)
def test_length_and_stop_limits(
    client: openai.OpenAI, params: dict[str, Any], content: str, finish: str
) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=USER, **params)
    assert completion.choices[0].message.content == content
    assert completion.choices[0].finish_reason == finish


def test_n_gives_n_choices_and_counts_their_tokens(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=USER, n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert {c.message.content for c in completion.choices} == {"echo: one two three"}
    assert completion.usage is not None and completion.usage.completion_tokens == 12


def test_tool_calls_are_sampled_from_the_parameter_schema(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o", messages=USER, tools=[WEATHER, ALARM]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = function_calls(choice.message)
    assert [c.function.name for c in calls] == ["get_weather", "set_alarm"]
    assert all(c.id.startswith("call_") and c.type == "function" for c in calls)
    assert len({c.id for c in calls}) == 2
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert json.loads(calls[1].function.arguments) == {
        "hour": 1,
        "loud": True,
        "tone": "ring",
        "label": "x",
        "days": ["x"],
    }


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"parallel_tool_calls": False}, ["get_weather"]),
        ({"tool_choice": {"type": "function", "function": {"name": "set_alarm"}}}, ["set_alarm"]),
        ({"tool_choice": "required"}, ["get_weather", "set_alarm"]),
        ({"tool_choice": "none"}, []),
    ],
)
def test_tool_choice_and_parallel_calls(
    client: openai.OpenAI, params: dict[str, Any], names: list[str]
) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o", messages=USER, tools=[WEATHER, ALARM], **params
    )
    calls = completion.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == names
    if not names:
        assert completion.choices[0].message.content == "echo: one two three"


def test_tool_results_are_answered(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="gpt-4o", messages=USER, tools=[WEATHER, ALARM])
    calls = first.choices[0].message.tool_calls or []
    messages: list[Any] = [*USER, first.choices[0].message.model_dump(exclude_none=True)]
    messages += [
        {"role": "tool", "tool_call_id": c.id, "content": f"r{i}"} for i, c in enumerate(calls)
    ]
    second = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "tool said: r0 | r1"
    assert second.choices[0].finish_reason == "stop"


class Forecast(BaseModel):
    city: str
    celsius: float
    sunny: bool
    tags: list[str]


def test_structured_output_parses_into_the_schema(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="gpt-4o", messages=USER, response_format=Forecast
    )
    assert completion.choices[0].message.parsed == Forecast(
        city="Paris", celsius=1, sunny=True, tags=["x"]
    )
    as_object = client.chat.completions.create(
        model="gpt-4o", messages=USER, response_format={"type": "json_object"}
    )
    assert json.loads(as_object.choices[0].message.content or "") == {
        "answer": "echo: one two three"
    }


def test_stream_with_usage_follows_the_chunk_protocol(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4o" for c in chunks)
    first = chunks[0].choices[0].delta
    assert (first.role, first.content, first.refusal) == ("assistant", "", None)
    pieces = [c.choices[0].delta.content for c in chunks[1:-2]]
    assert pieces == ["echo:", " one", " two", " three"]
    finish = chunks[-2].choices[0]
    assert finish.finish_reason == "stop" and finish.delta.content is None
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 7


def test_stream_bytes_are_exact_sse_frames(fake: FakeOpenAI) -> None:
    request = {"model": "m", "messages": USER, "stream": True}
    with_usage = request | {"stream_options": {"include_usage": True}}
    status, headers, raw = raw_post(fake, "/v1/chat/completions", json.dumps(with_usage).encode())
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["usage"] is None for c in chunks[:-1]) and chunks[-1]["choices"] == []
    assert chunks[0]["choices"][0] == {
        "index": 0,
        "delta": {"role": "assistant", "content": "", "refusal": None},
        "logprobs": None,
        "finish_reason": None,
    }
    assert chunks[-2]["choices"][0]["delta"] == {}
    assert all("obfuscation" in c for c in chunks)
    _, _, raw = raw_post(fake, "/v1/chat/completions", json.dumps(request | {"n": 2}).encode())
    plain = [json.loads(p) for p in sse_payloads(raw)[:-1]]
    assert not any("usage" in c for c in plain)
    assert [c["choices"][0]["index"] for c in plain[:4]] == [0, 1, 0, 1]


def test_streamed_tool_calls_reassemble_in_the_sdk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=USER, tools=[WEATHER, ALARM], stream=True
        )
    )
    deltas = [d for c in chunks for d in c.choices[0].delta.tool_calls or []]
    for index in (0, 1):
        mine = [d for d in deltas if d.index == index]
        head, rest = mine[0], mine[1:]
        assert head.id and head.type == "function" and head.function is not None
        assert head.function.name and head.function.arguments == ""
        assert len(rest) > 1
        assert all(d.id is None and d.function and d.function.name is None for d in rest)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    with client.chat.completions.stream(
        model="gpt-4o", messages=USER, tools=[WEATHER, ALARM]
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "set_alarm"]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}


async def test_async_client_streams_too(fake: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(
        base_url=fake.base_url, api_key=API_KEY, max_retries=0, timeout=5
    ) as sdk:
        stream = await sdk.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert text == "echo: one two three"


def test_embeddings_are_deterministic_unit_vectors(client: openai.OpenAI) -> None:
    result = client.embeddings.create(
        model="text-embedding-3-small", input=["alpha beta", "gamma"], encoding_format="float"
    )
    assert result.object == "list" and result.model == "text-embedding-3-small"
    assert [(d.object, d.index) for d in result.data] == [("embedding", 0), ("embedding", 1)]
    first, second = (d.embedding for d in result.data)
    assert len(first) == 8 and first != second
    assert math.fsum(v * v for v in first) == pytest.approx(1.0, abs=1e-6)
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (3, 3)
    again = client.embeddings.create(model="x", input="alpha beta", encoding_format="float")
    assert again.data[0].embedding == first
    short = client.embeddings.create(
        model="x", input="alpha beta", encoding_format="float", dimensions=4
    )
    norm = math.sqrt(math.fsum(v * v for v in first[:4]))
    assert short.data[0].embedding == pytest.approx([v / norm for v in first[:4]], rel=1e-5)


def test_embeddings_in_base64_are_little_endian_float32(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    as_float = client.embeddings.create(model="e", input="alpha", encoding_format="float")
    decoded_by_sdk = client.embeddings.create(model="e", input="alpha")
    assert fake.last_request.json["encoding_format"] == "base64"  # the SDK's default
    assert decoded_by_sdk.data[0].embedding == as_float.data[0].embedding
    raw = client.embeddings.create(model="e", input=[[1, 2, 3]], encoding_format="base64")
    encoded = raw.data[0].embedding
    assert isinstance(encoded, str)
    assert len(struct.unpack("<8f", base64.b64decode(encoded))) == 8
    assert raw.usage.prompt_tokens == 3


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert "gpt-4o" in [m.id for m in models]
    model = client.models.retrieve("gpt-4o")
    assert (model.id, model.object, model.owned_by) == ("gpt-4o", "model", "system")
    assert isinstance(model.created, int)
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("gpt-9")
    assert info.value.code == "model_not_found"
    assert info.value.body == {
        "message": "The model 'gpt-9' does not exist",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
