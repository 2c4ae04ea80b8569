"""The legacy Completions API (``POST /v1/completions``) through the official ``openai`` SDK, on
deployments of every upstream format: the prompt becomes one user turn, the answer comes back as
``choices[].text``, streamed too, and what a chat model cannot honour is a 400 naming it."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.openai_chat import REFUSAL
from tests.fakes.openai_upstream import FakeOpenAI

DEPLOYMENTS = ["chat", "m-anthropic-ok", "m-gemini-ok", "m-bedrock-ok"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_a_prompt_is_answered_as_text(client: openai.OpenAI, deployment: str):
    done = client.completions.create(model=deployment, prompt="Say hello", max_tokens=20)
    assert done.object == "text_completion" and done.model == deployment
    assert done.choices[0].text and done.choices[0].finish_reason in ("stop", "length")
    assert done.usage is not None and done.usage.prompt_tokens > 0


def test_the_prompt_reaches_a_chat_upstream_as_one_user_turn(
    client: openai.OpenAI, fake_upstream: FakeOpenAI
):
    client.completions.create(model="chat", prompt=["Say hello"], stop="END")
    sent = fake_upstream.last_request.json
    assert sent["messages"] == [{"role": "user", "content": "Say hello"}]
    assert sent["max_tokens"] == 16  # this API's default when none is sent
    assert sent["stop"] == ["END"]


@pytest.mark.parametrize("deployment", ["chat", "m-anthropic-ok"])
def test_a_stream_is_text_completion_chunks_with_usage_last(client: openai.OpenAI, deployment: str):
    chunks = list(
        client.completions.create(
            model=deployment,
            prompt="Say hello",
            max_tokens=20,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "text_completion" for c in chunks)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    assert chunks[-1].usage is not None and not chunks[-1].choices


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": "x", "echo": True}, "echo"),
        ({"prompt": "x", "suffix": "end"}, "suffix"),
        ({"prompt": "x", "logprobs": 3}, "logprobs"),
        ({"prompt": "x", "best_of": 2}, "best_of"),
    ],
)
def test_what_a_chat_model_cannot_do_is_a_400_naming_the_field(
    client: openai.OpenAI, fields: dict[str, object], param: str
):
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="chat", **fields)  # type: ignore[call-overload]
    assert info.value.param == param


def test_a_refusal_is_the_completion_text(client: openai.OpenAI):
    """This API has no refusal field: an upstream's refusal is what the model said, as text."""
    done = client.completions.create(model="chat", prompt="please refuse this", max_tokens=40)
    assert done.choices[0].text == REFUSAL and done.choices[0].finish_reason == "stop"


def test_a_streamed_refusal_is_the_completion_text(client: openai.OpenAI):
    chunks = list(client.completions.create(model="chat", prompt="please refuse this", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == REFUSAL
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
