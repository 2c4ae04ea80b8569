"""The embedded SmolLM2 model, really loaded and really answering, through the gateway."""

from __future__ import annotations

import concurrent.futures
import json
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the capital of France?"}
]


def test_local_model_answers(client: openai.OpenAI):
    completion = client.chat.completions.create(
        model="local", messages=QUESTION, max_tokens=24, temperature=0
    )
    assert "Paris" in (completion.choices[0].message.content or "")
    assert completion.model == "local"
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_local_model_streams_with_usage(client: openai.OpenAI):
    chunks = list(
        client.chat.completions.create(
            model="smollm2-135m-instruct",
            messages=QUESTION,
            max_tokens=24,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0


def test_local_embeddings(client: openai.OpenAI):
    result = client.embeddings.create(model="local", input=["cats purr", "stock markets fell"])
    first, second = (d.embedding for d in result.data)
    assert len(first) == len(second) > 0
    assert first != second


@pytest.mark.parametrize(
    ("kwargs", "capability"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what is this?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64,AA=="},
                            },
                        ],
                    }
                ]
            },
            "image input",
        ),
    ],
)
def test_local_model_refuses_what_it_cannot_do(client: openai.OpenAI, kwargs, capability):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="local", **kwargs)
    assert f"does not support {capability}" in info.value.message
    assert "'local'" in info.value.message


def test_local_model_calls_a_tool_then_answers_with_its_result(client: openai.OpenAI):
    """Chat Completions with tools through the gateway: the model writes the call itself."""
    tool: Any = {
        "type": "function",
        "function": {
            "name": "capital_of",
            "description": "The capital city of a country.",
            "parameters": {
                "type": "object",
                "properties": {"country": {"type": "string"}},
                "required": ["country"],
            },
        },
    }
    # Greedy: a sampled call can run past max_tokens inside its JSON, and a cut-off call is
    # kept as text (``local/tools.py`` ``parse``).
    asked = client.chat.completions.create(
        model="local",
        messages=QUESTION,
        tools=[tool],
        tool_choice="required",
        max_tokens=48,
        temperature=0,
    )
    choice = asked.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "capital_of"  # type: ignore[union-attr]
    assert set(json.loads(call.function.arguments)) == {"country"}  # type: ignore[union-attr]
    answered = client.chat.completions.create(
        model="local",
        messages=[
            *QUESTION,
            choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "Paris"},
        ],
        tools=[tool],
        max_tokens=48,
    )
    assert answered.choices[0].finish_reason in ("stop", "tool_calls", "length")
    assert answered.usage is not None and answered.usage.prompt_tokens > asked.usage.prompt_tokens  # type: ignore[union-attr]


def test_local_queue_full_is_429_with_retry_after(client: openai.OpenAI):
    """More concurrent generations than the worker's queue holds: some get 429, none hang."""

    def call() -> str:
        try:
            client.chat.completions.create(
                model="local", messages=QUESTION, max_tokens=48, temperature=0
            )
            return "ok"
        except openai.RateLimitError as exc:
            assert int(exc.response.headers["retry-after"]) >= 1
            return "429"

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: call(), range(8)))
    assert "ok" in outcomes and "429" in outcomes
