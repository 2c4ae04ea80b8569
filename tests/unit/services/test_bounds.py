"""Issue 17 #6, invariant (d): bounded storage per request. A client's 15 MB model name is
neither stored whole in the ledger (three such requests grew a database from 1.5 MB to 74 MB)
nor echoed whole in the 404."""

from __future__ import annotations

import pytest

from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import ModelNotFound
from modelyard.protocols.anthropic import errors as anthropic_errors
from modelyard.protocols.openai import errors as openai_errors
from modelyard.services.chat import ChatService
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.metering import Meter
from modelyard.services.pipeline import MAX_MODEL, Caller, Pipeline
from modelyard.services.stages import default_stages
from modelyard.store.usage import LedgerRow
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits import Scope
from modelyard.tenancy.limits_memory import MemoryLimiter

HUGE = "m" * 15_000_000


@pytest.mark.parametrize("stream", [False, True])
async def test_a_huge_unknown_model_is_stored_and_echoed_bounded(stream: bool) -> None:
    settings = {
        "local": {"enabled": False},
        "providers": {"p": {"type": "vllm", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": {"chat": {"targets": [{"provider": "p", "model": "x"}]}},
    }
    gateway = Gateway(settings_from_data(settings), None)
    rows: list[LedgerRow] = []
    limiter = MemoryLimiter()
    meter = Meter(limiter, rows.append, lambda: gateway)
    chat, embeddings = ChatService(gateway), EmbeddingService(gateway)
    pipeline = Pipeline(chat, embeddings, meter, default_stages(None), set())
    principal = Principal("key000000004", project_id="p1", scopes=(Scope("key:k4", rpm=100),))
    request = ChatRequest(HUGE, [Message("user", (TextPart("hi"),))], stream=stream)
    try:
        with pytest.raises(ModelNotFound) as raised:
            if stream:
                await pipeline.stream(
                    Caller(principal, "req-huge", "/v1/chat/completions"), request
                )
            else:
                await pipeline.complete(
                    Caller(principal, "req-huge", "/v1/chat/completions"), request
                )
    finally:
        await gateway.aclose()
    assert len(raised.value.message) < 400
    for body in (openai_errors.error_body(raised.value), anthropic_errors.error_body(raised.value)):
        assert len(body) < 1_000
    assert [(row[0], row[6], row[9]) for row in rows] == [("req-huge", HUGE[:MAX_MODEL], 404)]
    assert sum(len(field) for field in rows[0] if isinstance(field, str)) < 1_000
