"""What Messages API clients (the official ``anthropic`` SDK, as Claude Code uses the API) get
from deployments under non-Claude names: mid-conversation system turns with their beta, the
client's betas forwarded, ``count_tokens`` exact on an Anthropic first target and estimated
elsewhere, ``/v1/models`` in Anthropic's shape, and an input estimate in ``message_start``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server

MID = "mid-conversation-system-2026-04-07"
DEPLOYMENTS = ("agent-an", "agent-oa", "agent-an2", "agent-x")


@pytest.fixture(scope="module")
def gateway(
    fake_upstream: FakeOpenAI,
    vendor_fakes: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    fake: FakeAnthropic = vendor_fakes["anthropic"]
    providers = {
        "an": {"type": "anthropic", "base_url": fake.base_url, "api_key": "env::K"},
        "an2": {
            "type": "anthropic",
            "base_url": fake.base_url,
            "api_key": "env::K",
            "options": {"betas_denied": "mid-conversation-*"},
        },
        "oa": {
            "type": "openai_compatible",
            "base_url": fake_upstream.base_url,
            "api_key": "env::K",
        },
    }
    deployments = {
        "agent-an": {"targets": [{"provider": "an", "model": "claude-sonnet-4-5"}]},
        "agent-an2": {"targets": [{"provider": "an2", "model": "claude-sonnet-4-5"}]},
        "agent-oa": {"targets": [{"provider": "oa", "model": "gpt-4o-mini"}]},
        "agent-x": {
            "targets": [
                {"provider": "oa", "model": "gpt-4o-mini"},
                {"provider": "an", "model": "claude-sonnet-4-5"},
            ]
        },
    }
    config = {"local": {"enabled": False}, "providers": providers, "deployments": deployments}
    with run_server(tmp_path_factory.mktemp("anthropic-clients"), config, {"K": UPSTREAM_KEY}) as s:
        yield s


@pytest.fixture(scope="module")
def client(gateway: RunningServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)


def _conversation() -> list[Any]:
    return [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "what next?"},
        {"role": "system", "content": [{"type": "text", "text": "Answer in one word."}]},
    ]


def test_a_mid_conversation_system_turn_reaches_anthropic_with_its_beta(client, vendor_fakes):
    fake: FakeAnthropic = vendor_fakes["anthropic"]
    betas = f"{MID},context-1m-2025-08-07"
    message = client.messages.create(
        model="agent-an",
        max_tokens=64,
        system=[{"type": "text", "text": "lead", "cache_control": {"type": "ephemeral"}}],
        messages=_conversation(),
        extra_headers={"anthropic-beta": betas},
    )
    assert message.content
    sent = fake.last_request
    assert sent.headers["anthropic-beta"] == betas
    assert sent.json["messages"][-1] == {
        "role": "system",
        "content": [{"type": "text", "text": "Answer in one word."}],
    }
    assert sent.json["system"] == [
        {"type": "text", "text": "lead", "cache_control": {"type": "ephemeral"}}
    ]


def test_without_the_forwarded_beta_the_system_turn_is_folded(client, vendor_fakes):
    fake: FakeAnthropic = vendor_fakes["anthropic"]
    client.messages.create(
        model="agent-an2",
        max_tokens=64,
        system="lead",
        messages=_conversation(),
        extra_headers={"anthropic-beta": MID},
    )
    sent = fake.last_request
    assert "anthropic-beta" not in sent.headers  # the operator denied it
    assert [t["role"] for t in sent.json["messages"]] == ["user", "assistant", "user"]
    assert [b["text"] for b in sent.json["system"]] == ["lead", "Answer in one word."]


def test_a_system_turn_at_an_openai_upstream_is_a_system_message_in_place(client, fake_upstream):
    client.messages.create(model="agent-oa", max_tokens=64, system="lead", messages=_conversation())
    sent = fake_upstream.last_request.json
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["system", "user", "assistant", "user", "system"]
    assert sent["messages"][-1]["content"] == "Answer in one word."


def test_server_tools_pass_to_anthropic_and_are_refused_elsewhere(client, vendor_fakes):
    fake: FakeAnthropic = vendor_fakes["anthropic"]
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
    user = [{"role": "user", "content": "news?"}]
    client.messages.create(model="agent-an", max_tokens=64, messages=user, tools=[search])
    assert fake.last_request.json["tools"] == [search]
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="agent-oa", max_tokens=64, messages=user, tools=[search])
    assert "web_search" in info.value.message


def test_count_tokens_is_exact_on_an_anthropic_first_target_and_estimated_elsewhere(
    client, vendor_fakes
):
    fake: FakeAnthropic = vendor_fakes["anthropic"]
    messages = [{"role": "user", "content": "count these words please " * 20}]
    exact = client.messages.with_raw_response.count_tokens(model="agent-an", messages=messages)
    assert exact.headers["x-modelyard-token-count"] == "exact"
    assert fake.last_request.path.endswith("/messages/count_tokens")
    assert fake.last_request.json["model"] == "claude-sonnet-4-5"
    estimated = client.messages.with_raw_response.count_tokens(model="agent-x", messages=messages)
    assert estimated.headers["x-modelyard-token-count"] == "estimate"
    assert exact.parse().input_tokens > 0 and estimated.parse().input_tokens > 0


def test_models_are_listed_in_anthropics_shape_for_its_sdk(client, gateway):
    page = client.models.list(limit=2)
    assert [m.id for m in page.data] == ["agent-an", "agent-an2"]
    assert page.has_more and page.first_id == "agent-an" and page.last_id == "agent-an2"
    assert all(m.type == "model" and m.display_name and m.created_at for m in page.data)
    assert [m.id for m in client.models.list()] == sorted(DEPLOYMENTS)  # every page, in order
    assert client.models.retrieve("agent-oa").id == "agent-oa"
    plain = httpx.get(f"{gateway.url}/v1/models").json()
    assert plain["object"] == "list" and plain["data"][0]["object"] == "model"  # OpenAI's shape


def test_message_start_carries_an_input_estimate_before_the_final_count(client):
    with client.messages.stream(
        model="agent-oa",
        max_tokens=32,
        messages=[{"role": "user", "content": "a reasonably long prompt " * 40}],
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    start = next(e for e in events if e.type == "message_start")
    assert start.message.usage.input_tokens > 100  # ~1000 characters: the estimate, not 0
    assert final.usage.input_tokens > 0


PDF_DATA = "JVBERi0xLjQK"


def test_documents_pass_to_anthropic_whole_and_are_refused_where_the_model_reads_no_pdf(
    client, vendor_fakes, fake_upstream
):
    fake: FakeAnthropic = vendor_fakes["anthropic"]
    pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_DATA},
        "title": "Report",
        "context": "Quarterly figures",
        "cache_control": {"type": "ephemeral"},
    }
    text = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "plain words"},
        "title": "Notes",
    }
    user = [{"role": "user", "content": [pdf, text, {"type": "text", "text": "summarise"}]}]
    client.messages.create(model="agent-an", max_tokens=64, messages=user)
    assert fake.last_request.json["messages"][0]["content"][:2] == [pdf, text]
    # The catalog says gpt-4o-mini reads no PDFs: a 400 naming the capability, before any call.
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="agent-oa", max_tokens=64, messages=user)
    assert "PDF documents" in info.value.message
    # A text document is text to every model.
    only_text = [{"role": "user", "content": [text, {"type": "text", "text": "summarise"}]}]
    client.messages.create(model="agent-oa", max_tokens=64, messages=only_text)
    parts = fake_upstream.last_request.json["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "Notes\n\nplain words"}
