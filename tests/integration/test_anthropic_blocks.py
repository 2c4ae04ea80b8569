"""What an Anthropic upstream sends beyond the core reaches a Messages client (the official
``anthropic`` SDK, as Claude Code uses it) in its place, whole and streamed, and goes back
unchanged in the client's history: ``redacted_thinking`` in a tool loop with extended thinking,
web search's ``server_tool_use`` and ``web_search_tool_result``, and text ``citations``. An
upstream of another API gets the history without them (the text stays)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.fakes.anthropic_messages import SEARCH_CITED, SEARCH_FOUND, SEARCH_TITLE, SEARCH_URL
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.anthropic_wire import REDACTED_DATA
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server

THINKING = {"type": "enabled", "budget_tokens": 1024}
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
SEARCH: Any = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
REDACTED = {"type": "redacted_thinking", "data": REDACTED_DATA}
QUESTION = "search the web: the capital of France?"


@pytest.fixture(scope="module")
def gateway(
    fake_upstream: FakeOpenAI,
    vendor_fakes: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    fake: FakeAnthropic = vendor_fakes["anthropic"]
    providers = {
        "an": {"type": "anthropic", "base_url": fake.base_url, "api_key": "env::K"},
        "oa": {
            "type": "openai_compatible",
            "base_url": fake_upstream.base_url,
            "api_key": "env::K",
        },
    }
    deployments = {
        "blocks-an": {"targets": [{"provider": "an", "model": "claude-sonnet-4-5"}]},
        "blocks-oa": {"targets": [{"provider": "oa", "model": "gpt-4o-mini"}]},
    }
    config = {"local": {"enabled": False}, "providers": providers, "deployments": deployments}
    with run_server(tmp_path_factory.mktemp("anthropic-blocks"), config, {"K": UPSTREAM_KEY}) as s:
        yield s


@pytest.fixture(scope="module")
def client(gateway: RunningServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)


def _ask(client: anthropic.Anthropic, streamed: bool, **kwargs: Any) -> anthropic.types.Message:
    if streamed:
        with client.messages.stream(**kwargs) as stream:
            return stream.get_final_message()
    message: anthropic.types.Message = client.messages.create(**kwargs)
    return message


def _content(message: anthropic.types.Message) -> list[dict[str, Any]]:
    """The blocks as a client sends them back (the SDK's own serialization)."""
    return [block.model_dump(exclude_none=True) for block in message.content]


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_redacted_thinking_goes_round_a_tool_loop_unchanged(
    client: anthropic.Anthropic, vendor_fakes: dict[str, Any], streamed: bool
) -> None:
    fake: FakeAnthropic = vendor_fakes["anthropic"]
    messages: list[Any] = [{"role": "user", "content": "think in secret: weather in Paris?"}]
    ask = {"model": "blocks-an", "max_tokens": 2048, "thinking": THINKING, "tools": [WEATHER]}
    first = _ask(client, streamed, messages=messages, **ask)
    assert [b.type for b in first.content] == ["redacted_thinking", "tool_use"]
    assert first.content[0].model_dump() == REDACTED
    assert first.stop_reason == "tool_use"
    call = first.content[1]
    assert call.type == "tool_use"
    messages += [
        {"role": "assistant", "content": _content(first)},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
        },
    ]
    second = _ask(client, streamed, messages=messages, **ask)
    sent = fake.last_request.json
    # The turn goes back with its only thinking, in its place: thinking stays on.
    assert sent["messages"][1]["content"][0] == REDACTED
    assert [b["type"] for b in sent["messages"][1]["content"]] == ["redacted_thinking", "tool_use"]
    assert sent["thinking"] == THINKING
    assert [b.type for b in second.content] == ["redacted_thinking", "text"]
    assert second.content[1].type == "text" and second.content[1].text == "tool said: sunny"


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_web_search_blocks_and_citations_reach_the_client_in_place(
    client: anthropic.Anthropic, streamed: bool
) -> None:
    messages = [{"role": "user", "content": QUESTION}]
    answer = _ask(
        client, streamed, model="blocks-an", max_tokens=256, messages=messages, tools=[SEARCH]
    )
    assert [b.type for b in answer.content] == [
        "server_tool_use",
        "web_search_tool_result",
        "text",
        "text",
    ]
    use, result, found, cited = answer.content
    assert use.type == "server_tool_use" and use.name == "web_search"
    assert use.input == {"query": QUESTION}
    assert result.type == "web_search_tool_result" and result.tool_use_id == use.id
    assert isinstance(result.content, list)
    assert [(r.url, r.title) for r in result.content] == [(SEARCH_URL, SEARCH_TITLE)]
    assert found.type == "text" and found.text == SEARCH_FOUND and not found.citations
    assert cited.type == "text" and cited.text == SEARCH_CITED
    assert cited.citations is not None
    assert [(c.type, c.model_dump().get("url")) for c in cited.citations] == [
        ("web_search_result_location", SEARCH_URL)
    ]
    assert answer.stop_reason == "end_turn"


def _searched(fake: FakeAnthropic) -> list[dict[str, Any]]:
    """A web search answer's blocks as the upstream writes them (asked of it directly)."""
    upstream = anthropic.Anthropic(base_url=fake.base_url, api_key=UPSTREAM_KEY, max_retries=0)
    raw = upstream.messages.with_raw_response.create(
        model="claude-opus-4-6",
        max_tokens=256,
        tools=[SEARCH],
        messages=[{"role": "user", "content": QUESTION}],
    )
    content: list[dict[str, Any]] = raw.http_response.json()["content"]
    assert [b["type"] for b in content] == [
        "server_tool_use",
        "web_search_tool_result",
        "text",
        "text",
    ]
    return content


def test_web_search_blocks_go_back_to_anthropic_unchanged(
    client: anthropic.Anthropic, vendor_fakes: dict[str, Any]
) -> None:
    fake: FakeAnthropic = vendor_fakes["anthropic"]
    content = _searched(fake)
    messages: list[Any] = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": content},
        {"role": "user", "content": "thanks"},
    ]
    client.messages.create(model="blocks-an", max_tokens=256, tools=[SEARCH], messages=messages)
    assert fake.last_request.json["messages"][1]["content"] == content


def test_an_upstream_of_another_api_gets_the_text_without_them(
    client: anthropic.Anthropic, vendor_fakes: dict[str, Any], fake_upstream: FakeOpenAI
) -> None:
    history: list[Any] = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": [REDACTED, *_searched(vendor_fakes["anthropic"])]},
        {"role": "user", "content": "thanks"},
    ]
    client.messages.create(model="blocks-oa", max_tokens=64, messages=history)
    sent = fake_upstream.last_request.json["messages"]
    assert sent[1] == {"role": "assistant", "content": SEARCH_FOUND + SEARCH_CITED}
