"""The Responses API through the official ``openai`` SDK, on every upstream family."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.integration.conftest import MATRIX_UPSTREAMS
from tests.integration.server import RunningServer

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def dep(upstream: str, case: str = "ok") -> str:
    return f"m-{upstream}-{case}"


@pytest.mark.parametrize("upstream", MATRIX_UPSTREAMS)
def test_create_plain_text(client: openai.OpenAI, upstream: str):
    response = client.responses.create(model=dep(upstream), input="hello responses")
    assert response.status == "completed"
    assert response.output_text == "echo: hello responses"
    assert response.id.startswith("resp_")
    assert response.usage is not None and response.usage.input_tokens > 0


@pytest.mark.parametrize("upstream", MATRIX_UPSTREAMS)
def test_stream_final_response(client: openai.OpenAI, upstream: str):
    with client.responses.stream(model=dep(upstream), input="hello stream") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert final.output_text == "echo: hello stream"
    assert final.status == "completed"
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(set(numbers)) and numbers[0] == 0
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds


@pytest.mark.parametrize("upstream", MATRIX_UPSTREAMS)
def test_function_tool_round_trip(client: openai.OpenAI, upstream: str):
    first = client.responses.create(model=dep(upstream), input="weather in Paris?", tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert calls[0].call_id != calls[0].id
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    second = client.responses.create(
        model=dep(upstream),
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "type": "function_call",
                "call_id": calls[0].call_id,
                "name": "get_weather",
                "arguments": calls[0].arguments,
            },
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"},
        ],
    )
    assert second.output_text == "tool said: sunny"
