"""Issue 17 #2: whatever an upstream sends, the attempt loop turns it into a classified error:
the faulty target's breaker hears of it, the next target answers, and the call is finished once.

A deployment of a faulty target then a healthy one, for each fault of ``tests.fakes.hostile``
in OpenAI's and Anthropic's wire formats, streamed and not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from tests.fakes.hostile import Hostile

from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import ModelyardError, UpstreamError
from modelyard.services.chat import ChatService
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.metering import Meter
from modelyard.services.pipeline import Caller, Pipeline
from modelyard.services.stages import default_stages
from modelyard.store.usage import LedgerRow
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits import Scope
from modelyard.tenancy.limits_memory import MemoryLimiter

SECRET = "sk-hostile-upstream-key-0123456789"
PRINCIPAL = Principal("key000000002", project_id="p1", scopes=(Scope("key:k2", rpm=10**6),))
FAULTS = ["bad-usage", "bad-utf8", "reset", "garbage", "echo-500"]
# Faults that may come after the first event (a stream's usage comes last).
LATE = ["bad-usage", "late-utf8", "partial"]
WIRES = ["openai", "anthropic"]


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    with Hostile() as server:
        yield server


@pytest.fixture
async def hostile_gateway(hostile: Hostile) -> AsyncIterator[Gateway]:
    providers = {
        "openai": {"type": "openai_compatible", "base_url": hostile.base_url, "api_key": SECRET},
        "anthropic": {"type": "anthropic", "base_url": hostile.url, "api_key": SECRET},
    }
    deployments: dict[str, dict[str, Any]] = {
        f"{wire}-{fault}": {
            "targets": [
                {"provider": wire, "model": fault},
                {"provider": wire, "model": "ok"},
            ],
        }
        for wire in WIRES
        for fault in FAULTS
    }
    once = {"attempts": 1}
    for wire in WIRES:
        for fault in LATE:
            target = {"provider": wire, "model": fault}
            deployments[f"solo-{wire}-{fault}"] = {"targets": [target], "retry": once}
    settings = {"local": {"enabled": False}, "providers": providers, "deployments": deployments}
    built = Gateway(settings_from_data(settings), None)
    yield built
    await built.aclose()


def _pipeline(gateway: Gateway, rows: list[LedgerRow]) -> tuple[Pipeline, set[asyncio.Task[None]]]:
    ending: set[asyncio.Task[None]] = set()
    meter = Meter(MemoryLimiter(), rows.append, lambda: gateway)
    chat, embeddings = ChatService(gateway), EmbeddingService(gateway)
    return Pipeline(chat, embeddings, meter, default_stages(None), ending), ending


def _request(model: str, stream: bool) -> ChatRequest:
    return ChatRequest(model, [Message("user", (TextPart("hi"),))], max_tokens=16, stream=stream)


@pytest.mark.parametrize(
    ("fault", "stream"),
    [(fault, False) for fault in FAULTS] + [(f, True) for f in FAULTS if f not in LATE],
)
@pytest.mark.parametrize("wire", WIRES)
async def test_a_faulty_target_fails_over_and_its_breaker_hears_of_it(
    hostile_gateway: Gateway, hostile: Hostile, wire: str, fault: str, stream: bool
) -> None:
    rows: list[LedgerRow] = []
    pipeline, ending = _pipeline(hostile_gateway, rows)
    caller = Caller(PRINCIPAL, f"req-{wire}-{fault}", "/v1/chat/completions")
    before = hostile.hits[fault]
    if stream:
        streaming = await pipeline.stream(caller, _request(f"{wire}-{fault}", True))
        texts = [getattr(event, "text", "") async for event in streaming.events]
        assert "".join(texts) == "hello"
        served = streaming.served
    else:
        answer = await pipeline.complete(caller, _request(f"{wire}-{fault}", False))
        assert answer.result.choices[0].message.text() == "hello"
        served = answer.served
    await asyncio.gather(*ending)
    assert hostile.hits[fault] > before, "the fault was never served"
    assert (served.model, served.attempts) == ("ok", 2)
    assert hostile_gateway.router.health.of(f"{wire}/{fault}").consecutive_failures == 1
    assert [(row[0], row[9]) for row in rows] == [(caller.request_id, 200)]


@pytest.mark.parametrize("fault", LATE)
@pytest.mark.parametrize("wire", WIRES)
async def test_a_fault_of_a_lone_target_is_a_502_wherever_the_stream_breaks(
    hostile_gateway: Gateway, hostile: Hostile, wire: str, fault: str
) -> None:
    """Before the first event (the frames came in one read) or after it, the same answer: a
    classified 502, the breaker told, one ledger row."""
    rows: list[LedgerRow] = []
    pipeline, ending = _pipeline(hostile_gateway, rows)
    caller = Caller(PRINCIPAL, f"req-solo-{wire}-{fault}", "/v1/chat/completions")
    before = hostile.hits[fault]
    with pytest.raises(ModelyardError) as raised:
        streaming = await pipeline.stream(caller, _request(f"solo-{wire}-{fault}", True))
        try:
            async for _ in streaming.events:
                pass
        finally:
            await streaming.aclose()
    await asyncio.gather(*ending)
    assert hostile.hits[fault] == before + 1
    assert isinstance(raised.value, UpstreamError) and raised.value.status == 502
    assert hostile_gateway.router.health.of(f"{wire}/{fault}").consecutive_failures == 1
    assert [(row[0], row[9]) for row in rows] == [(caller.request_id, 502)]
