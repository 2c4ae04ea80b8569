"""The fake OpenAI upstream sends log probabilities, refusals and citations as OpenAI does,
read back through the official SDK's own types."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel

from tests.fakes.openai_chat import CITED_URL, REFUSAL

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "one two three"}]
REFUSE: list[ChatCompletionMessageParam] = [{"role": "user", "content": "please refuse"}]


class Answer(BaseModel):
    answer: str


def test_logprobs_with_top_alternatives(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="m", messages=USER, logprobs=True, top_logprobs=3
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None and logprobs.refusal is None
    assert "".join(t.token for t in logprobs.content) == "echo: one two three"
    for token in logprobs.content:
        assert token.bytes == list(token.token.encode())
        assert token.top_logprobs[0].token == token.token
        assert len(token.top_logprobs) == 3
    plain = client.chat.completions.create(model="m", messages=USER)
    assert plain.choices[0].logprobs is None


def test_top_logprobs_needs_logprobs(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=USER, top_logprobs=2)
    assert "top_logprobs" in str(caught.value)


def test_a_structured_output_refusal_parses_in_the_sdk(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="m", messages=REFUSE, response_format=Answer, logprobs=True
    )
    message = completion.choices[0].message
    assert message.refusal == REFUSAL and message.content is None and message.parsed is None
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.refusal is not None
    assert "".join(t.token for t in logprobs.refusal) == REFUSAL


def test_a_streamed_refusal_assembles_in_the_sdk(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model="m", messages=REFUSE, logprobs=True) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.refusal == REFUSAL
    logprobs = final.choices[0].logprobs
    assert logprobs is not None and logprobs.refusal is not None
    assert "".join(t.token for t in logprobs.refusal) == REFUSAL


def test_search_answers_cite_their_source(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="m", messages=USER, extra_body={"web_search_options": {}}
    )
    [annotation] = completion.choices[0].message.annotations or []
    assert annotation.url_citation.url == CITED_URL
    assert annotation.url_citation.end_index == len("echo: one two three")
    chunks = list(
        client.chat.completions.create(
            model="m", messages=USER, stream=True, extra_body={"web_search_options": {}}
        )
    )
    cited = [c for c in chunks if c.choices and (c.choices[0].delta.model_extra or {})]
    assert len(cited) == 1 and not cited[0].choices[0].delta.content
