"""Claude through Bedrock (Converse) for a Messages client (the official ``anthropic`` SDK),
whole and streamed: encrypted thinking reaches it as ``redacted_thinking`` (the base64 data as
Converse sent it) and goes back to Bedrock as ``redactedContent``, so a thinking and tools loop
works; a cited text keeps its citation (whole answers); the stop reasons the core folds keep
their own value; a guardrail's or the model's filter is a ``refusal``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.fakes.bedrock_converse import CITED, REDACTED
from tests.fakes.bedrock_upstream import FakeBedrock
from tests.integration.conftest import BEDROCK_ENV
from tests.integration.server import RunningServer, run_server

STREAMED = pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}
WEATHER: Any = {
    "name": "weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def gateway(
    vendor_fakes: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    fake: FakeBedrock = vendor_fakes["bedrock"]
    config = {
        "local": {"enabled": False},
        "providers": {"br": {"type": "bedrock", "base_url": fake.base_url}},
        "deployments": {
            "claude-br": {
                "targets": [{"provider": "br", "model": "anthropic.claude-sonnet-4-5-v1:0"}]
            }
        },
    }
    with run_server(tmp_path_factory.mktemp("bedrock-claude"), config, BEDROCK_ENV) as server:
        yield server


@pytest.fixture(scope="module")
def client(gateway: RunningServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)


def _ask(client: anthropic.Anthropic, streamed: bool, **kwargs: Any) -> anthropic.types.Message:
    if streamed:
        with client.messages.stream(model="claude-br", max_tokens=2048, **kwargs) as stream:
            return stream.get_final_message()
    message: anthropic.types.Message = client.messages.create(
        model="claude-br", max_tokens=2048, **kwargs
    )
    return message


def _text(message: anthropic.types.Message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


@STREAMED
def test_redacted_thinking_round_trips_through_a_tool_loop(
    client: anthropic.Anthropic, vendor_fakes: dict[str, Any], streamed: bool
) -> None:
    fake: FakeBedrock = vendor_fakes["bedrock"]
    messages: list[Any] = [{"role": "user", "content": "think in secret: weather in Paris?"}]
    first = _ask(client, streamed, messages=messages, tools=[WEATHER], thinking=THINKING)
    assert [b.type for b in first.content] == ["redacted_thinking", "thinking", "tool_use"]
    redacted = first.content[0]
    assert redacted.type == "redacted_thinking" and redacted.data == REDACTED
    call = first.content[2]
    assert call.type == "tool_use" and first.stop_reason == "tool_use"
    # As the API asks: the assistant turn goes back whole, thinking blocks first.
    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}
    messages.append({"role": "user", "content": [result]})
    second = _ask(client, streamed, messages=messages, tools=[WEATHER], thinking=THINKING)
    sent = fake.last_request.json["messages"][1]["content"]
    assert sent[0] == {"reasoningContent": {"redactedContent": REDACTED}}
    assert "reasoningText" in sent[1]["reasoningContent"] and "toolUse" in sent[2]
    assert _text(second) == "tool said: sunny"


def test_a_redacted_block_whose_data_is_not_base64_is_refused(
    client: anthropic.Anthropic,
) -> None:
    turn = [
        {"type": "redacted_thinking", "data": "not base64!"},
        {"type": "text", "text": "Hello."},
    ]
    messages: Any = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": turn},
        {"role": "user", "content": "again"},
    ]
    with pytest.raises(anthropic.BadRequestError) as caught:
        _ask(client, False, messages=messages)
    assert "redacted_thinking" in caught.value.message


def test_a_cited_text_keeps_its_citation(client: anthropic.Anthropic) -> None:
    message = _ask(client, False, messages=[{"role": "user", "content": "cite the source"}])
    cited = message.content[-1]
    assert cited.type == "text" and cited.text == CITED
    assert cited.citations is not None and len(cited.citations) == 1
    citation = cited.citations[0]
    assert citation.type == "char_location" and citation.cited_text == CITED
    assert (citation.start_char_index, citation.end_char_index) == (0, len(CITED))
    assert citation.document_title == "Grass facts"


def test_a_streamed_cited_text_keeps_its_text(client: anthropic.Anthropic) -> None:
    message = _ask(client, True, messages=[{"role": "user", "content": "cite the source"}])
    assert _text(message).endswith(CITED)


@STREAMED
def test_the_stop_reasons_the_core_folds_keep_their_own_value(
    client: anthropic.Anthropic, streamed: bool
) -> None:
    full = _ask(client, streamed, messages=[{"role": "user", "content": "fill the context"}])
    assert full.stop_reason == "model_context_window_exceeded"
    messages: Any = [{"role": "user", "content": "one two END three"}]
    cut = _ask(client, streamed, messages=messages, stop_sequences=["END"])
    assert cut.stop_reason == "stop_sequence" and _text(cut) == "echo: one two "
    assert cut.stop_sequence == "END"
    plain = _ask(client, streamed, messages=[{"role": "user", "content": "hello"}])
    assert plain.stop_reason == "end_turn"


@STREAMED
@pytest.mark.parametrize("cue", ["please refuse", "trip the guardrail"])
def test_a_filtered_answer_is_a_refusal(
    client: anthropic.Anthropic, streamed: bool, cue: str
) -> None:
    message = _ask(client, streamed, messages=[{"role": "user", "content": cue}])
    assert message.stop_reason == "refusal"
