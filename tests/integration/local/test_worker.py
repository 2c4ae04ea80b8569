"""The local model worker, for real: the embedded SmolLM2 behind LocalRuntime, over loopback.

Clients are the official ``openai`` SDK where a user would use it, and aiohttp where the exact
bytes on the wire (SSE frames, headers) are what is under test.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import signal
import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
import pytest
import pytest_asyncio
from openai.types.chat import ChatCompletionContentPartImageParam, ChatCompletionMessageParam

from modelyard.local import (
    DEFAULT_MODEL_NAME,
    LocalRuntime,
    LocalRuntimeError,
    LocalRuntimeSpec,
    default_model_path,
)
from tests.waiting import DEADLINE_S, eventually

MODEL = DEFAULT_MODEL_NAME
LONG_PROMPT: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Write a very long story about a dragon."}
]


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    spec = LocalRuntimeSpec({MODEL: default_model_path()}, ready_timeout_s=60)
    with LocalRuntime(spec) as started:
        yield started


@pytest.fixture(scope="module")
def tiny_queue_runtime() -> Iterator[LocalRuntime]:
    spec = LocalRuntimeSpec({MODEL: default_model_path()}, queue_size=1, ready_timeout_s=60)
    with LocalRuntime(spec) as started:
        yield started


@pytest_asyncio.fixture(scope="module")
async def client(runtime: LocalRuntime) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=runtime.base_url, api_key="unused", max_retries=0)
    yield sdk
    await sdk.close()


@pytest_asyncio.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # Generous: with the machine busy the model runs ten times slower than on a quiet one.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DEADLINE_S)) as session:
        yield session


def _root(runtime: LocalRuntime) -> str:
    return runtime.base_url.removesuffix("/v1")


async def _sse_payloads(response: aiohttp.ClientResponse) -> list[Any]:
    """Every ``data:`` payload of an SSE body, checking the framing on the way."""
    raw = (await response.read()).decode()
    assert raw.endswith("\n\n")
    payloads: list[Any] = []
    for block in raw.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        data = block.removeprefix("data: ")
        payloads.append(data if data == "[DONE]" else orjson.loads(data))
    return payloads


async def test_health_and_models(runtime: LocalRuntime, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{_root(runtime)}/health") as response:
        assert response.status == 200
        # ``waiting``: the requests queued per model, read by the gateway's metrics.
        assert await response.json() == {"status": "ok", "models": [MODEL], "waiting": {MODEL: 0}}
    async with http.get(f"{runtime.base_url}/models") as response:
        listing = await response.json()
    assert listing["object"] == "list"
    (entry,) = listing["data"]
    assert entry["id"] == MODEL
    assert entry["object"] == "model"
    assert entry["context_window"] == 4096
    assert entry["n_ctx_train"] == 8192  # SmolLM2's GGUF says llama.context_length = 8192


async def test_chat_answers_the_capital_of_france(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24,
        temperature=0,
    )
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    (choice,) = completion.choices
    assert choice.message.role == "assistant"
    assert "Paris" in (choice.message.content or "")
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None
    assert 0 < usage.completion_tokens <= 24
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_chat_wire_shape_and_n_choices(
    runtime: LocalRuntime, http: aiohttp.ClientSession
) -> None:
    body = {
        "model": MODEL,
        "messages": [
            {"role": "developer", "content": "Answer briefly."},
            {"role": "user", "content": [{"type": "text", "text": "Name a colour."}]},
        ],
        "max_completion_tokens": 8,
        "temperature": 0.7,
        "seed": 7,
        "stop": ["\n\n"],
        "n": 2,
    }
    async with http.post(f"{runtime.base_url}/chat/completions", json=body) as response:
        assert response.status == 200
        completion = await response.json()
    assert set(completion) == {"id", "object", "created", "model", "choices", "usage"}
    assert [choice["index"] for choice in completion["choices"]] == [0, 1]
    for choice in completion["choices"]:
        assert set(choice) == {"index", "message", "finish_reason", "logprobs"}
        assert set(choice["message"]) == {"role", "content", "refusal"}
        assert choice["logprobs"] is None
    usage = completion["usage"]
    assert 0 < usage["completion_tokens"] <= 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_stream_frames_with_usage(runtime: LocalRuntime, http: aiohttp.ClientSession) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 12,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with http.post(f"{runtime.base_url}/chat/completions", json=body) as response:
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        payloads = await _sse_payloads(response)
    assert payloads[-1] == "[DONE]"
    chunks = payloads[:-1]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    first, *middle, finish, usage_chunk = chunks
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert middle and all("content" in chunk["choices"][0]["delta"] for chunk in middle)
    assert finish["choices"][0]["finish_reason"] in ("stop", "length")
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert 0 < usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_stream_through_the_sdk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Count to three."}],
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens <= 10


async def test_json_object_response_parses(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": 'Return a JSON object with a key "city" set to "Paris".'}
        ],
        response_format={"type": "json_object"},
        max_tokens=48,
        temperature=0,
    )
    assert completion.choices[0].finish_reason == "stop"
    assert isinstance(orjson.loads(completion.choices[0].message.content or ""), dict)


async def test_json_schema_response_follows_the_schema(client: openai.AsyncOpenAI) -> None:
    schema: dict[str, object] = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    completion = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France? Reply in JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
        max_tokens=32,
        temperature=0,
    )
    answer = orjson.loads(completion.choices[0].message.content or "")
    assert isinstance(answer["city"], str)


async def test_embeddings(
    client: openai.AsyncOpenAI, runtime: LocalRuntime, http: aiohttp.ClientSession
) -> None:
    result = await client.embeddings.create(
        model=MODEL, input=["hello world", "the cat sat on the mat"]
    )
    first, second = (item.embedding for item in result.data)
    assert len(first) == len(second) > 0
    assert first != second
    assert math.isclose(sum(x * x for x in first), 1.0, rel_tol=1e-3)  # normalised
    assert result.usage.prompt_tokens == result.usage.total_tokens > 0
    body = {"model": MODEL, "input": "hello world", "encoding_format": "base64"}
    async with http.post(f"{runtime.base_url}/embeddings", json=body) as response:
        packed = base64.b64decode((await response.json())["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(packed) // 4}f", packed)
    assert decoded == pytest.approx(first, abs=1e-5)


async def test_image_input_is_refused(client: openai.AsyncOpenAI) -> None:
    image: ChatCompletionContentPartImageParam = {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
    }
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": [{"type": "text", "text": "What?"}, image]}],
            max_tokens=8,
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error"
    assert "image input" in error["message"] and MODEL in error["message"]


WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
_PARIS: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Paris?"}]


async def test_a_tool_call_is_produced_by_the_model(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model=MODEL,
        messages=_PARIS,
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=48,
        temperature=0,  # greedy: at the default 1.0 the city was once long enough to hit 48
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    # The grammar holds the model to the tool's schema: a string city and nothing else.
    arguments = orjson.loads(call.function.arguments)
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str)


async def test_a_streamed_tool_call_arrives_whole(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=_PARIS,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=48,
        temperature=0,  # greedy, as above: a sampled argument may run past max_tokens
        stream=True,
    )
    deltas = [chunk.choices[0] async for chunk in stream if chunk.choices]
    calls = [call for d in deltas for call in d.delta.tool_calls or ()]
    assert [c.function.name for c in calls if c.function] == ["get_weather"]
    assert orjson.loads(calls[0].function.arguments or "").keys() == {"city"}  # type: ignore[union-attr]
    assert deltas[-1].finish_reason == "tool_calls"


async def test_a_tool_result_is_folded_back_for_an_answer(client: openai.AsyncOpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        *_PARIS,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 24 degrees."},
    ]
    completion = await client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER], tool_choice="none", max_tokens=24
    )
    choice = completion.choices[0]
    assert choice.message.tool_calls is None
    assert choice.message.content


async def test_legacy_functions_are_refused(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=MODEL,
            messages=_PARIS,
            functions=[{"name": "get_weather", "parameters": {"type": "object"}}],
            max_tokens=8,
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert "tools" in error["message"] and MODEL in error["message"]
    assert error["param"] == "functions"


async def test_unknown_model_is_404(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
    assert caught.value.status_code == 404
    assert MODEL in str(caught.value)


_HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b"{not json", None),
        (orjson.dumps({"model": MODEL, "messages": "hi"}), "messages"),
        (orjson.dumps({"model": MODEL, "messages": _HI, "temperature": "hot"}), "temperature"),
        (orjson.dumps({"model": MODEL, "messages": _HI, "max_tokens": 1.5}), "max_tokens"),
        (orjson.dumps({"model": MODEL, "messages": _HI, "stream": "yes"}), "stream"),
        (
            orjson.dumps({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}),
            "messages[0].role",
        ),
    ],
)
async def test_malformed_requests_are_400(
    runtime: LocalRuntime, http: aiohttp.ClientSession, raw: bytes, param: str | None
) -> None:
    async with http.post(
        f"{runtime.base_url}/chat/completions",
        data=raw,
        headers={"content-type": "application/json"},
    ) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


async def test_full_queue_answers_429_with_retry_after(
    tiny_queue_runtime: LocalRuntime, http: aiohttp.ClientSession
) -> None:
    """One runs, one waits (queue size 1), the rest are turned away. The one running is a
    stream the test holds open, so the queue is full for as long as the test needs it to be,
    however slowly the model generates."""
    url = f"{tiny_queue_runtime.base_url}/chat/completions"
    short = {"model": MODEL, "messages": _HI, "max_tokens": 8, "temperature": 0}

    async def call(client_id: str) -> tuple[int, str | None, Any]:
        headers = {"x-modelyard-client": client_id}
        async with http.post(url, json=short, headers=headers) as response:
            return response.status, response.headers.get("retry-after"), await response.json()

    long_body = {"model": MODEL, "messages": LONG_PROMPT, "max_tokens": 3000, "temperature": 0}
    holder = await http.post(url, json=long_body | {"stream": True})
    assert holder.status == 200
    await holder.content.readline()  # its first frame: it holds the model
    calls = [asyncio.ensure_future(call(f"client-{i}")) for i in range(3)]
    pending: set[asyncio.Future[tuple[int, str | None, Any]]] = set(calls)
    while len(pending) > 1:  # two are answered while the model is held: turned away
        _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    holder.close()  # the hang-up ends the generation; the waiting one runs
    results = [await c for c in calls]
    assert sorted(status for status, _, _ in results) == [200, 429, 429]
    for status, retry_after, payload in results:
        if status == 429:
            assert retry_after is not None and int(retry_after) >= 1
            assert payload["error"]["type"] == "rate_limit_error"
            assert payload["error"]["code"] == "queue_full"


def _cpu_s(pid: int) -> float:
    """CPU time the process has used: it counts the model's work, not the machine's load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def test_disconnect_mid_stream_stops_the_generation(
    runtime: LocalRuntime, client: openai.AsyncOpenAI
) -> None:
    """Without cancellation the abandoned generation would hold the model for 3,000 tokens and
    the next call would wait for all of them. The worker's CPU time tells the two apart however
    loaded the machine: the call after the hang-up must cost less than a 64-token generation."""
    pid = runtime.pid
    assert pid is not None
    long_body = {"model": MODEL, "messages": LONG_PROMPT, "temperature": 0}
    before = _cpu_s(pid)
    reference = await client.chat.completions.create(
        model=MODEL, messages=LONG_PROMPT, max_tokens=64, temperature=0
    )
    assert reference.usage is not None and reference.usage.completion_tokens == 64
    tokens_64 = _cpu_s(pid) - before
    async with aiohttp.ClientSession() as session:
        body = long_body | {"max_tokens": 3000, "stream": True}
        response = await session.post(f"{runtime.base_url}/chat/completions", json=body)
        assert response.status == 200
        for _ in range(5):
            await response.content.readline()
        hung_up = _cpu_s(pid)
        response.close()  # drops the connection mid-stream
    completion = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0
    )
    assert completion.choices[0].message.content
    assert _cpu_s(pid) - hung_up < 2 * tokens_64


def test_a_worker_that_cannot_load_fails_start_with_its_stderr(tmp_path: Path) -> None:
    missing = tmp_path / "missing.gguf"
    spec = LocalRuntimeSpec({"broken": missing}, ready_timeout_s=30)
    runtime = LocalRuntime(spec)
    with pytest.raises(LocalRuntimeError) as caught:
        runtime.start()
    runtime.stop()
    message = str(caught.value)
    assert "before it was ready" in message
    assert "missing.gguf" in message  # from the worker's stderr


async def test_supervisor_restarts_a_killed_worker_on_the_same_port(
    runtime: LocalRuntime, client: openai.AsyncOpenAI
) -> None:
    old_pid, port = runtime.pid, runtime.port
    assert old_pid is not None and runtime.alive
    os.kill(old_pid, signal.SIGKILL)

    async def restarted() -> bool:
        return runtime.alive and runtime.pid != old_pid

    await eventually(restarted, "the worker restarted after SIGKILL")
    assert runtime.port == port
    completion = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0
    )
    assert completion.choices[0].message.content
