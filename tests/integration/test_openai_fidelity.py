"""An OpenAI client gets what an OpenAI upstream answered, whole: log probabilities, a
refusal, citations, the service tier and the usage details the core does not model."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import MessageParam, TextBlock
from openai.types.chat import ChatCompletionMessageParam

from tests.fakes.openai_chat import CITED_URL, REFUSAL
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.responses_spec import spec_errors
from tests.integration.server import RunningServer

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there friend"}]
REFUSE: list[ChatCompletionMessageParam] = [{"role": "user", "content": "please refuse this"}]
ANSWER = "echo: hello there friend"


def test_logprobs_reach_the_client(client: openai.OpenAI, fake_upstream: FakeOpenAI):
    completion = client.chat.completions.create(
        model="chat", messages=USER, logprobs=True, top_logprobs=2
    )
    assert fake_upstream.last_request.json["top_logprobs"] == 2
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert "".join(t.token for t in logprobs.content) == ANSWER
    assert [len(t.top_logprobs) for t in logprobs.content] == [2] * len(logprobs.content)
    assert logprobs.content[0].logprob == -0.01
    assert logprobs.content[0].bytes == list(b"echo:")


def test_streamed_logprobs_come_with_their_tokens(client: openai.OpenAI):
    chunks = list(
        client.chat.completions.create(model="chat", messages=USER, logprobs=True, stream=True)
    )
    pieces = [c.choices[0] for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(p.delta.content or "" for p in pieces) == ANSWER
    for piece in pieces:  # each piece's log probabilities in its own chunk
        assert piece.logprobs is not None and piece.logprobs.content is not None
        assert "".join(t.token for t in piece.logprobs.content) == piece.delta.content


def test_a_refusal_says_why(client: openai.OpenAI):
    completion = client.chat.completions.create(model="chat", messages=REFUSE)
    message = completion.choices[0].message
    assert message.refusal == REFUSAL
    assert message.content is None
    assert completion.choices[0].finish_reason == "stop"


def test_a_streamed_refusal_says_why(client: openai.OpenAI):
    chunks = list(
        client.chat.completions.create(model="chat", messages=REFUSE, stream=True, logprobs=True)
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.refusal or "" for d in deltas) == REFUSAL
    assert not "".join(d.content or "" for d in deltas)
    tokens = [
        t.token
        for c in chunks
        if c.choices and c.choices[0].logprobs and c.choices[0].logprobs.refusal
        for t in c.choices[0].logprobs.refusal
    ]
    assert "".join(tokens) == REFUSAL


def test_the_sdk_stream_helper_assembles_a_refusal(client: openai.OpenAI):
    with client.chat.completions.stream(model="chat", messages=REFUSE) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.refusal == REFUSAL


def test_citations_reach_the_client(client: openai.OpenAI):
    completion = client.chat.completions.create(
        model="chat", messages=USER, extra_body={"web_search_options": {}}
    )
    annotations = completion.choices[0].message.annotations
    assert annotations is not None and len(annotations) == 1
    cited = annotations[0].url_citation
    assert (cited.url, cited.start_index, cited.end_index) == (CITED_URL, 0, len(ANSWER))


def test_streamed_citations_reach_the_client(client: openai.OpenAI):
    stream = client.chat.completions.create(
        model="chat", messages=USER, stream=True, extra_body={"web_search_options": {}}
    )
    cited = [
        annotation
        for chunk in stream
        if chunk.choices
        for annotation in (chunk.choices[0].delta.model_extra or {}).get("annotations") or ()
    ]
    assert cited and cited[0]["url_citation"]["url"] == CITED_URL


def test_service_tier_and_usage_details_reach_the_client(client: openai.OpenAI):
    completion = client.chat.completions.create(model="chat", messages=USER)
    assert completion.service_tier == "default"
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.accepted_prediction_tokens == 0
    assert usage.completion_tokens_details.rejected_prediction_tokens == 0
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.audio_tokens == 0


def test_streamed_usage_details_reach_the_client(client: openai.OpenAI):
    chunks = list(
        client.chat.completions.create(
            model="chat", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.audio_tokens == 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0


@pytest.fixture(scope="module")
def claude(gateway: RunningServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)


CLAUDE_REFUSE: list[MessageParam] = [{"role": "user", "content": "please refuse this"}]


def test_an_anthropic_client_is_told_of_the_refusal(claude: anthropic.Anthropic):
    message = claude.messages.create(model="chat", max_tokens=64, messages=CLAUDE_REFUSE)
    assert message.stop_reason == "refusal"
    [block] = message.content
    assert isinstance(block, TextBlock) and block.text == REFUSAL


def test_an_anthropic_client_is_told_of_a_streamed_refusal(claude: anthropic.Anthropic):
    with claude.messages.stream(model="chat", max_tokens=64, messages=CLAUDE_REFUSE) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "refusal"
    assert "".join(b.text for b in message.content if isinstance(b, TextBlock)) == REFUSAL


def test_a_refusal_in_the_history_reaches_each_upstream(
    client: openai.OpenAI, fake_upstream: FakeOpenAI, vendor_fakes: dict[str, Any]
):
    """The client sends back the assistant turn that refused: Azure (OpenAI's own API) gets
    the ``refusal`` field; a generic OpenAI-compatible server and Anthropic, which have no
    such field, get it as the turn's text."""
    history: list[ChatCompletionMessageParam] = [
        *REFUSE,
        {"role": "assistant", "content": None, "refusal": REFUSAL},
        {"role": "user", "content": "why not?"},
    ]
    client.chat.completions.create(model="m-azure-ok", messages=history)
    assert fake_upstream.last_request.json["messages"][1] == {
        "role": "assistant",
        "content": None,
        "refusal": REFUSAL,
    }
    client.chat.completions.create(model="chat", messages=history)
    assert fake_upstream.last_request.json["messages"][1] == {
        "role": "assistant",
        "content": REFUSAL,
    }
    client.chat.completions.create(model="m-anthropic-ok", messages=history)
    sent = vendor_fakes["anthropic"].last_request.json["messages"]
    assert sent[1] == {"role": "assistant", "content": [{"type": "text", "text": REFUSAL}]}


def test_a_responses_client_gets_a_refusal_part(client: openai.OpenAI):
    """A Responses answer built on a chat upstream's refusal: the message's ``refusal``
    part, whole and streamed (``response.refusal.delta`` / ``.done``), as the spec says."""
    raw = client.responses.with_raw_response.create(model="chat", input="please refuse")
    body = raw.http_response.json()
    assert spec_errors("Response", body) == []
    [message] = body["output"]
    assert message["content"] == [{"type": "refusal", "refusal": REFUSAL}]
    with client.responses.stream(model="chat", input="please refuse") as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e.delta for e in events if e.type == "response.refusal.delta"]
    assert "".join(deltas) == REFUSAL
    [done] = [e for e in events if e.type == "response.refusal.done"]
    assert done.refusal == REFUSAL
    [item] = final.output
    assert item.type == "message" and item.content[0].type == "refusal"
    assert item.content[0].refusal == REFUSAL
    for event in events:
        if event.type.startswith("response.refusal") or event.type.startswith(
            "response.content_part"
        ):
            name = {
                "response.refusal.delta": "ResponseRefusalDeltaEvent",
                "response.refusal.done": "ResponseRefusalDoneEvent",
                "response.content_part.added": "ResponseContentPartAddedEvent",
                "response.content_part.done": "ResponseContentPartDoneEvent",
            }[event.type]
            assert spec_errors(name, event.model_dump(mode="json")) == []
