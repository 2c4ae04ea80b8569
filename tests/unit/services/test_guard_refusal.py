"""Output guardrails screen a refusal (``Message.refusal``, ``RefusalDelta``) as they screen the
answer's text: the same rules redact, block or flag it, whole and streamed (held back and
released like text). The fake upstream refuses when asked to "please refuse", with
``REFUSAL`` ("I'm sorry, I can't help with that request.")."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from tests.fakes import FakeOpenAI
from tests.fakes.openai_chat import REFUSAL

from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import ContentBlocked
from modelyard.core.events import Finished, RefusalDelta, StreamEvent, TextDelta, UsageReport
from modelyard.services.chat import ChatService
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.guards import guard_stages
from modelyard.services.metering import Meter
from modelyard.services.pipeline import Caller, Pipeline
from modelyard.services.stages import default_stages
from modelyard.store.usage import LedgerRow
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits_memory import MemoryLimiter

KEY = "sk-guard-refusal-0123456789"
PRINCIPAL = Principal("key000000001", project_id="p1")
REDACTED = "I'm [APOLOGY_1], I can't help with that request."


def _deny(action: str) -> dict[str, Any]:
    settings = {"words": ["sorry"], "category": "apology"}
    return {"kind": "deny", "phases": ["output"], "action": action, "settings": settings}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as server:
        yield server


@pytest.fixture
def rows() -> list[LedgerRow]:
    return []


@pytest.fixture
async def pipeline(fake: FakeOpenAI, rows: list[LedgerRow]) -> AsyncIterator[Pipeline]:
    target = [{"provider": "fake", "model": "gpt-4o-mini"}]
    settings = settings_from_data(
        {
            "local": {"enabled": False},
            "providers": {
                "fake": {"type": "openai_compatible", "base_url": fake.base_url, "api_key": KEY}
            },
            "deployments": {name: {"targets": target} for name in ("redact", "block", "flag")},
            "guardrails": {
                "policies": {
                    "redact": {"guards": [_deny("redact")]},
                    "block": {"guards": [_deny("block")]},
                    "flag": {"guards": [_deny("flag")]},
                },
                "deployments": {"redact": "redact", "block": "block", "flag": "flag"},
            },
        }
    )
    gateway = Gateway(settings, None)
    meter = Meter(MemoryLimiter(), rows.append, lambda: gateway)
    stages = default_stages(None, *guard_stages(gateway.policies))
    yield Pipeline(ChatService(gateway), EmbeddingService(gateway), meter, stages, set())
    await gateway.aclose()


def _request(model: str, stream: bool) -> ChatRequest:
    return ChatRequest(model, [Message("user", (TextPart("please refuse"),))], stream=stream)


def _caller() -> Caller:
    return Caller(PRINCIPAL, "req-refusal", "/v1/chat/completions")


async def _streamed(pipeline: Pipeline, model: str) -> list[StreamEvent]:
    streaming = await pipeline.stream(_caller(), _request(model, True))
    try:
        return [e async for e in streaming.events]
    finally:
        await streaming.aclose()


def _refusal(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, RefusalDelta))


async def test_a_whole_refusal_is_redacted_like_text(pipeline: Pipeline) -> None:
    answer = await pipeline.complete(_caller(), _request("redact", False))
    message = answer.result.choices[0].message
    assert message.refusal == REDACTED
    assert message.text() == ""


async def test_a_streamed_refusal_is_held_and_released_redacted(pipeline: Pipeline) -> None:
    events = await _streamed(pipeline, "redact")
    assert _refusal(events) == REDACTED
    assert not [e for e in events if isinstance(e, TextDelta) and e.text]
    # What was held goes out before the choice's finish.
    kinds = [type(e) for e in events if not isinstance(e, UsageReport)]
    assert kinds[-1] is Finished and RefusalDelta in kinds


@pytest.mark.parametrize("stream", [False, True])
async def test_a_refusal_with_a_blocked_word_is_blocked(pipeline: Pipeline, stream: bool) -> None:
    got: list[StreamEvent] = []
    with pytest.raises(ContentBlocked) as info:
        if stream:
            streaming = await pipeline.stream(_caller(), _request("block", True))
            try:
                async for event in streaming.events:
                    got.append(event)
            finally:
                await streaming.aclose()
        else:
            await pipeline.complete(_caller(), _request("block", False))
    assert info.value.category == "apology" and info.value.phase == "output"
    assert "sorry" not in _refusal(got)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_flagged_refusal_passes_whole_with_its_verdict(
    pipeline: Pipeline, rows: list[LedgerRow], stream: bool
) -> None:
    if stream:
        assert _refusal(await _streamed(pipeline, "flag")) == REFUSAL
    else:
        answer = await pipeline.complete(_caller(), _request("flag", False))
        assert answer.result.choices[0].message.refusal == REFUSAL
    assert rows[-1][22] == "deny:output:flag:apology:1.00"  # the guardrails column
