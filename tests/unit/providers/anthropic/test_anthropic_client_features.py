"""What Claude Code and other Messages clients send, as it reaches a Messages API upstream:
mid-conversation system turns, system blocks with their cache breakpoints, server tools and the
client's ``anthropic-beta`` names (through the fake upstream, which checks the wire)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from tests.fakes.anthropic_upstream import FakeAnthropic

from modelyard.core.chat import CacheMark, ChatRequest, Message, TextPart, ToolSpec
from modelyard.core.errors import InvalidRequest
from modelyard.providers.anthropic import AnthropicProvider
from modelyard.providers.anthropic.betas import BetaFilter
from modelyard.providers.anthropic.codec import BuildOptions, build_request
from modelyard.providers.base import CallContext, ProviderSettings
from modelyard.providers.transport import Transport

KEY = "sk-ant-test-key"
CTX = CallContext("req-1")
MID = "mid-conversation-system-2026-04-07"
OPTIONS = BuildOptions(provider="claude")
SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}


def conversation() -> list[Message]:
    return [
        Message("system", (TextPart("one"), TextPart("two", CacheMark("1h")))),
        Message("user", (TextPart("hi"),)),
        Message("assistant", (TextPart("hello"),)),
        Message("user", (TextPart("next", CacheMark()),)),
        Message("system", (TextPart("be terse"),)),
    ]


def body(request: ChatRequest, betas: tuple[str, ...] = ()) -> dict[str, Any]:
    return build_request(request, "claude-x", OPTIONS, stream=False, betas=betas).body


def test_system_blocks_keep_their_breakpoints():
    out = body(ChatRequest("d", conversation()))
    assert out["system"][:2] == [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]
    assert out["messages"][2]["content"] == [
        {"type": "text", "text": "next", "cache_control": {"type": "ephemeral"}}
    ]


def test_a_mid_conversation_system_turn_stays_in_place_only_with_the_beta():
    request = ChatRequest("d", conversation())
    hoisted = body(request)
    assert [t["role"] for t in hoisted["messages"]] == ["user", "assistant", "user"]
    assert hoisted["system"][-1] == {"type": "text", "text": "be terse"}
    placed = body(request, betas=(MID,))
    assert [t["role"] for t in placed["messages"]] == ["user", "assistant", "user", "system"]
    assert placed["messages"][-1]["content"] == [{"type": "text", "text": "be terse"}]
    assert len(placed["system"]) == 2


def test_tool_breakpoints_and_tool_result_breakpoints():
    tool = ToolSpec("f", None, {"type": "object"}, cache=CacheMark())
    messages = [
        Message("user", (TextPart("go"),)),
        Message("assistant", tool_calls=()),
        Message("tool", (TextPart("ok"),), tool_call_id="t1", cache=CacheMark()),
    ]
    out = body(ChatRequest("d", messages, tools=(tool,)))
    assert out["tools"][0]["cache_control"] == {"type": "ephemeral"}
    result = out["messages"][-1]["content"][0]
    assert result["cache_control"] == {"type": "ephemeral"}


def test_server_tools_pass_through_from_messages_clients_only():
    tool = ToolSpec("web_search", native=SEARCH)
    request = ChatRequest("d", [Message("user", (TextPart("q"),))], tools=(tool,))
    request.extra_origin = "anthropic"
    assert body(request)["tools"] == [SEARCH]
    request.extra_origin = "openai"
    with pytest.raises(InvalidRequest) as info:
        body(request)
    assert info.value.param == "tools[0].type" and "web_search" in str(info.value)


def test_beta_filter_allow_and_deny_lists():
    everything = BetaFilter(["*"], [], "")
    assert everything.passed(("a-1", MID)) == ("a-1", MID)
    some = BetaFilter(["mid-conversation-*", "prompt-caching-*"], ["prompt-caching-2024*"], "x-1")
    assert some.passed(("a-1", MID, "prompt-caching-2024-07-31")) == (MID,)
    base = {"anthropic-version": "2023-06-01"}
    assert some.headers(base, ()) is base
    assert some.headers(base, (MID,))["anthropic-beta"] == f"x-1,{MID}"
    assert BetaFilter([], [], "").passed((MID,)) == ()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=KEY) as server:
        yield server


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.aclose()


async def test_the_clients_betas_reach_the_upstream_with_the_system_turn(fake, transport):
    settings = ProviderSettings(
        name="claude", type="anthropic", base_url=fake.base_url, api_key=KEY
    )
    provider = AnthropicProvider(settings, transport)
    request = ChatRequest("d", conversation(), betas=(MID, "context-1m-2025-08-07"))
    await provider.chat(request, "claude-x", CTX)
    sent = fake.last_request
    assert sent.headers["anthropic-beta"] == f"{MID},context-1m-2025-08-07"
    assert sent.json["messages"][-1]["role"] == "system"


async def test_a_denied_beta_is_not_sent_and_the_system_turn_is_folded(fake, transport):
    settings = ProviderSettings(
        name="claude",
        type="anthropic",
        base_url=fake.base_url,
        api_key=KEY,
        options={"betas_denied": "context-*, mid-conversation-*"},
    )
    provider = AnthropicProvider(settings, transport)
    await provider.chat(ChatRequest("d", conversation(), betas=(MID,)), "claude-x", CTX)
    sent = fake.last_request
    assert "anthropic-beta" not in sent.headers
    assert [t["role"] for t in sent.json["messages"]] == ["user", "assistant", "user"]
