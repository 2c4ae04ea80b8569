"""An Anthropic upstream's own stop reaches a Messages client (the official ``anthropic`` SDK)
as the upstream wrote it, whole and streamed: the stop sequence that matched, a turn paused
by a long server-tool search (sent back as is, it goes on), the context window; an OpenAI
client of the same upstream gets the core's finish reason. The code execution tool's container
reaches the client and goes back to the upstream when the client names it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server

SEARCH: Any = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
STREAMED = pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])


@pytest.fixture(scope="module")
def gateway(
    vendor_fakes: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    fake: FakeAnthropic = vendor_fakes["anthropic"]
    providers = {"an": {"type": "anthropic", "base_url": fake.base_url, "api_key": "env::K"}}
    target = {"targets": [{"provider": "an", "model": "claude-sonnet-4-5"}]}
    deployments = {name: target for name in ("stops-an", "stops-redacted", "stops-blocked")}
    deny = {"kind": "deny", "phases": ["output"], "settings": {"words": ["two"]}}
    guardrails = {
        "policies": {
            "redact": {"guards": [{**deny, "action": "redact"}]},
            "block": {"guards": [{**deny, "action": "block"}]},
        },
        "deployments": {"stops-redacted": "redact", "stops-blocked": "block"},
    }
    config = {
        "local": {"enabled": False},
        "providers": providers,
        "deployments": deployments,
        "guardrails": guardrails,
    }
    with run_server(tmp_path_factory.mktemp("anthropic-stops"), config, {"K": UPSTREAM_KEY}) as s:
        yield s


@pytest.fixture(scope="module")
def client(gateway: RunningServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)


def _ask(
    client: anthropic.Anthropic, streamed: bool, model: str = "stops-an", **kwargs: Any
) -> anthropic.types.Message:
    if streamed:
        with client.messages.stream(model=model, max_tokens=256, **kwargs) as stream:
            return stream.get_final_message()
    message: anthropic.types.Message = client.messages.create(model=model, max_tokens=256, **kwargs)
    return message


def _text(message: anthropic.types.Message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


@STREAMED
def test_the_matched_stop_sequence_is_named(client: anthropic.Anthropic, streamed: bool) -> None:
    messages = [{"role": "user", "content": "one two END three"}]
    message = _ask(client, streamed, messages=messages, stop_sequences=["zzz", "END"])
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "END"
    assert _text(message) == "echo: one two "


@STREAMED
def test_a_redacted_answer_keeps_its_stop(client: anthropic.Anthropic, streamed: bool) -> None:
    messages = [{"role": "user", "content": "one two END three"}]
    kwargs = {"messages": messages, "stop_sequences": ["END"]}
    message = _ask(client, streamed, model="stops-redacted", **kwargs)
    assert "two" not in _text(message) and _text(message).startswith("echo: one ")
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")


@STREAMED
def test_a_blocked_answer_has_no_stop(client: anthropic.Anthropic, streamed: bool) -> None:
    messages = [{"role": "user", "content": "one two END three"}]
    with pytest.raises(anthropic.APIError):
        _ask(client, streamed, model="stops-blocked", messages=messages, stop_sequences=["END"])


@STREAMED
def test_a_paused_turn_is_reported_and_goes_on_when_sent_back(
    client: anthropic.Anthropic, vendor_fakes: dict[str, Any], streamed: bool
) -> None:
    fake: FakeAnthropic = vendor_fakes["anthropic"]
    messages: list[Any] = [{"role": "user", "content": "search the web at length: Paris?"}]
    first = _ask(client, streamed, messages=messages, tools=[SEARCH])
    assert first.stop_reason == "pause_turn"
    assert [b.type for b in first.content] == ["server_tool_use"]
    # As the API asks: the paused turn goes back as is, and the model goes on.
    paused = [b.model_dump(exclude_none=True) for b in first.content]
    messages.append({"role": "assistant", "content": paused})
    second = _ask(client, streamed, messages=messages, tools=[SEARCH])
    assert fake.last_request.json["messages"][-1]["content"] == paused
    assert second.stop_reason == "end_turn"
    assert [b.type for b in second.content] == ["web_search_tool_result", "text", "text"]


@STREAMED
def test_the_context_window_is_not_max_tokens(client: anthropic.Anthropic, streamed: bool) -> None:
    messages = [{"role": "user", "content": "fill the context, please"}]
    message = _ask(client, streamed, messages=messages)
    assert message.stop_reason == "model_context_window_exceeded"
    assert message.stop_sequence is None


@STREAMED
def test_a_refusal_round_trips(client: anthropic.Anthropic, streamed: bool) -> None:
    message = _ask(client, streamed, messages=[{"role": "user", "content": "please refuse"}])
    assert message.stop_reason == "refusal"


@STREAMED
def test_an_openai_client_gets_the_core_finish_reason(
    gateway: RunningServer, streamed: bool
) -> None:
    oa = openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0, timeout=60)
    cases = {
        "one two END three": ("stop", ["END"]),
        "fill the context, please": ("length", None),
    }
    for text, (finish, stop) in cases.items():
        messages: Any = [{"role": "user", "content": text}]
        if streamed:
            chunks = list(
                oa.chat.completions.create(
                    model="stops-an", messages=messages, stop=stop, stream=True
                )
            )
            reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
            assert [r for r in reasons if r] == [finish]
        else:
            answer = oa.chat.completions.create(model="stops-an", messages=messages, stop=stop)
            assert answer.choices[0].finish_reason == finish


CODE: Any = {"type": "code_execution_20250825", "name": "code_execution"}


@STREAMED
def test_the_code_execution_container_round_trips(
    client: anthropic.Anthropic, vendor_fakes: dict[str, Any], streamed: bool
) -> None:
    fake: FakeAnthropic = vendor_fakes["anthropic"]
    messages: list[Any] = [{"role": "user", "content": "run some code"}]
    first = _ask(client, streamed, messages=messages, tools=[CODE])
    assert first.container is not None and first.container.id.startswith("container_")
    assert first.container.expires_at.year == 2026
    # The client reuses the container by naming it; the upstream gets it as sent.
    messages += [
        {"role": "assistant", "content": _text(first)},
        {"role": "user", "content": "and again"},
    ]
    second = _ask(client, streamed, messages=messages, tools=[CODE], container=first.container.id)
    assert fake.last_request.json["container"] == first.container.id
    assert second.container is not None and second.container.id == first.container.id


@STREAMED
def test_a_plain_answer_has_no_container(client: anthropic.Anthropic, streamed: bool) -> None:
    message = _ask(client, streamed, messages=[{"role": "user", "content": "hello"}])
    assert message.container is None
