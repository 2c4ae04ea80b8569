"""The OpenAI dialect through a real server, a fake OpenAI upstream and the official SDK."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.types.chat import (
    ChatCompletionContentPartImageParam,
    ChatCompletionContentPartParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)

from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_non_streaming_chat_names_the_deployment(client: openai.OpenAI, fake_upstream: FakeOpenAI):
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=USER)
    completion = raw.parse()
    assert completion.model == "chat"
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-modelyard-deployment"] == "chat"
    assert raw.headers["x-modelyard-provider"] == "fake"
    assert raw.headers["x-modelyard-model"] == "gpt-4o-mini"
    assert raw.headers["x-request-id"]
    sent = fake_upstream.last_request
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_streaming_with_usage(client: openai.OpenAI, fake_upstream: FakeOpenAI):
    chunks = list(
        client.chat.completions.create(
            model="chat", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert all(c.model == "chat" for c in chunks)


def test_streaming_without_usage_still_meters_upstream(
    client: openai.OpenAI, fake_upstream: FakeOpenAI
):
    chunks = list(client.chat.completions.create(model="chat", messages=USER, stream=True))
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    # The gateway always asks the upstream for usage: it needs it to meter the call.
    assert fake_upstream.last_request.json["stream_options"] == {"include_usage": True}


def test_parameters_and_unknown_fields_reach_the_upstream(
    client: openai.OpenAI, fake_upstream: FakeOpenAI
):
    client.chat.completions.create(
        model="chat",
        messages=USER,
        temperature=0.3,
        top_p=0.8,
        stop=["zzz"],
        seed=11,
        user="u-1",
        metadata={"team": "a"},
        max_completion_tokens=50,
        extra_body={"logit_bias": {"50256": -100}, "my_vendor_flag": True},
    )
    body = fake_upstream.last_request.json
    assert body["temperature"] == 0.3 and body["top_p"] == 0.8
    assert body["stop"] == ["zzz"] and body["seed"] == 11 and body["user"] == "u-1"
    assert body["metadata"] == {"team": "a"}
    assert body["max_tokens"] == 50
    assert body["logit_bias"] == {"50256": -100} and body["my_vendor_flag"] is True


def test_deployment_params_override(client: openai.OpenAI, fake_upstream: FakeOpenAI):
    client.chat.completions.create(model="tuned", messages=USER, temperature=1.5)
    body = fake_upstream.last_request.json
    assert body["temperature"] == 0.1 and body["presence_penalty"] == 0.5


def test_n_and_length_finish(client: openai.OpenAI):
    completion = client.chat.completions.create(model="chat", messages=USER, n=2, max_tokens=1)
    assert [c.index for c in completion.choices] == [0, 1]
    assert all(c.finish_reason == "length" for c in completion.choices)


def test_tool_call_round_trip(client: openai.OpenAI, fake_upstream: FakeOpenAI):
    # SDK params and a model dump of the SDK's own answer, as a client replays them.
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = client.chat.completions.create(model="chat", messages=messages, tools=[WEATHER_TOOL])
    calls = first.choices[0].message.tool_calls
    assert calls is not None
    call = calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [first.choices[0].message.model_dump(exclude_none=True)]
    messages += [{"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    second = client.chat.completions.create(model="chat", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "tool said: sunny"
    sent = fake_upstream.last_request.json["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id and sent[2]["tool_call_id"] == call.id


def test_parallel_tool_calls_streamed(client: openai.OpenAI):
    other: ChatCompletionFunctionToolParam = {
        **WEATHER_TOOL,
        "function": {**WEATHER_TOOL["function"], "name": "get_time"},
    }
    stream = client.chat.completions.create(
        model="chat", messages=USER, tools=[WEATHER_TOOL, other], stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    for chunk in stream:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(delta.index, {"name": "", "args": "", "id": ""})
            entry["id"] = delta.id or entry["id"]
            entry["name"] += (delta.function.name or "") if delta.function else ""
            entry["args"] += (delta.function.arguments or "") if delta.function else ""
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert all(json.loads(c["args"]) == {"city": "Paris"} for c in calls.values())
    assert all(c["id"] for c in calls.values())


def test_json_schema_output(client: openai.OpenAI, fake_upstream: FakeOpenAI):
    schema: dict[str, object] = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    completion = client.chat.completions.create(
        model="chat",
        messages=USER,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    assert "answer" in json.loads(completion.choices[0].message.content or "")
    assert fake_upstream.last_request.json["response_format"]["json_schema"]["schema"] == schema


def test_image_parts_reach_an_upstream_that_takes_them(
    client: openai.OpenAI, fake_upstream: FakeOpenAI
):
    image: ChatCompletionContentPartImageParam = {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
    }
    content: list[ChatCompletionContentPartParam] = [
        {"type": "text", "text": "what is this"},
        image,
    ]
    client.chat.completions.create(model="chat", messages=[{"role": "user", "content": content}])
    assert fake_upstream.last_request.json["messages"][0]["content"][1] == image


def test_models_list_and_retrieve(client: openai.OpenAI):
    ids = {m.id for m in client.models.list()}
    assert {"chat", "local", "smollm2-135m-instruct", "embed"} <= ids
    assert client.models.retrieve("chat").id == "chat"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_embeddings_float_and_base64(client: openai.OpenAI, fake_upstream: FakeOpenAI):
    as_float = client.embeddings.create(model="embed", input=["a", "b"], encoding_format="float")
    as_b64 = client.embeddings.create(model="embed", input=["a", "b"])  # the SDK asks base64
    # base64 carries float32; the float form of the same vectors must agree to that precision.
    for f, b in zip(as_float.data, as_b64.data, strict=True):
        assert f.embedding == pytest.approx(b.embedding, rel=1e-6)
    direct = openai.OpenAI(base_url=fake_upstream.base_url, api_key=UPSTREAM_KEY, max_retries=0)
    expected = direct.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], encoding_format="float"
    )
    assert [d.embedding for d in as_float.data] == [d.embedding for d in expected.data]
    assert as_float.model == "embed" and as_float.usage.prompt_tokens > 0
