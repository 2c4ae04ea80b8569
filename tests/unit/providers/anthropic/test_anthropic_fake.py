"""The fake Messages API read by the official ``anthropic`` SDK and raw: it speaks the wire."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import anthropic
import orjson
import pytest
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.pauses import record_pauses

KEY = "sk-ant-fake-sdk"
TOOLS = [
    {
        "name": "weather",
        "description": "Weather now",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def client(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake.base_url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


def test_streamed_events_accumulate_into_the_same_message_as_a_plain_call(client, fake):
    kwargs = {
        "model": "claude-x",
        "max_tokens": 3000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": TOOLS,
        "messages": [{"role": "user", "content": "weather?"}],
    }
    plain = client.messages.create(**kwargs)
    with client.messages.stream(**kwargs) as stream:
        kinds = [event.type for event in stream]
        streamed = stream.get_final_message()
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert [b.type for b in streamed.content] == ["thinking", "tool_use"]
    assert streamed.content[0].thinking == plain.content[0].thinking
    assert streamed.content[0].signature == plain.content[0].signature
    assert streamed.content[1].input == plain.content[1].input == {"city": "Paris"}
    assert streamed.stop_reason == plain.stop_reason == "tool_use"
    assert streamed.usage.output_tokens == plain.usage.output_tokens
    assert fake.last_request.json["stream"] is True


def test_every_event_names_its_type_and_ping_follows_the_first_block(fake):
    body = {
        "model": "claude-x",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "hello"}],
    }
    headers = {
        "x-api-key": KEY,
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
    }
    request = urllib.request.Request(
        f"{fake.base_url}/v1/messages", data=orjson.dumps(body), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    frames = [f for f in text.split("\n\n") if f]
    names = []
    for frame in frames:
        event_line, data_line = frame.split("\n")
        name = event_line.removeprefix("event: ")
        assert orjson.loads(data_line.removeprefix("data: "))["type"] == name
        names.append(name)
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]


def test_requests_the_real_api_refuses_are_refused(client):
    with pytest.raises(anthropic.BadRequestError, match="Extra inputs are not permitted"):
        client.messages.create(
            model="claude-x",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_body={"frequency_penalty": 0.1},
        )
    with pytest.raises(anthropic.BadRequestError, match="tool_result"):
        client.messages.create(
            model="claude-x",
            max_tokens=10,
            messages=[
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}],
                },
                {"role": "user", "content": "no result here"},
            ],
        )


def test_wrong_key_rate_limit_and_overload(fake):
    bad = anthropic.Anthropic(base_url=fake.base_url, api_key="wrong", max_retries=0)
    with bad, pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(
            model="claude-x", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    with anthropic.Anthropic(base_url=fake.base_url, api_key=KEY, max_retries=0) as sdk:
        with pytest.raises(anthropic.RateLimitError) as limited:
            sdk.messages.create(
                model="fail-429", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert limited.value.response.headers["retry-after"] == "2"
        with pytest.raises(anthropic.APIStatusError) as overloaded:
            sdk.messages.create(
                model="fail-529", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert overloaded.value.status_code == 529
        body = overloaded.value.body  # the SDK types a parsed body as object
        assert isinstance(body, dict)
        assert body["error"]["type"] == "overloaded_error"


def test_count_tokens_and_slow_answers(client, monkeypatch: pytest.MonkeyPatch):
    counted = client.messages.count_tokens(
        model="claude-x", system="be kind", messages=[{"role": "user", "content": "a b c"}]
    )
    assert counted.input_tokens == 5
    pauses = record_pauses(monkeypatch)
    client.messages.create(
        model="slow-150", max_tokens=5, messages=[{"role": "user", "content": "x"}]
    )
    assert pauses == [0.15]  # the whole pause was over before the answer came
