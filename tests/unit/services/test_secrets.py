"""Issue 17 #4, invariant (c): nothing secret leaves. Every upstream fault of the hostile fake
quotes our request headers back (the provider's key, a custom auth header); the client's error,
in either dialect, streamed or not, and every log line must show none of them, not even half."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from tests.fakes.hostile import Hostile

from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import ModelyardError
from modelyard.protocols.anthropic import errors as anthropic_errors
from modelyard.protocols.openai import errors as openai_errors
from modelyard.services.chat import ChatService
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.metering import Meter
from modelyard.services.pipeline import Caller, Pipeline
from modelyard.services.stages import default_stages
from modelyard.store.usage import LedgerRow
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits_memory import MemoryLimiter

# Neither looks like a key to a pattern: only knowing them keeps them out.
API_KEY = "plainpassword42zebra"
HEADER_SECRET = "unicorn-hay-7781-meadow"
SECRETS = [API_KEY, HEADER_SECRET]
STATUSES = [400, 402, 404, 409, 413, 422, 429, 500, 502, 503, 529]
WIRES = ["openai", "anthropic"]
PRINCIPAL = Principal("key000000003", project_id="p1")


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    with Hostile() as server:
        yield server


@pytest.fixture
async def pipeline(hostile: Hostile) -> AsyncIterator[Pipeline]:
    auth = {"api_key": API_KEY, "headers": {"x-custom-auth": HEADER_SECRET}}
    providers = {
        "openai": {"type": "openai_compatible", "base_url": hostile.base_url, **auth},
        "anthropic": {"type": "anthropic", "base_url": hostile.url, **auth},
    }
    once = {"attempts": 1}
    deployments = {
        f"{wire}-{model}": {"targets": [{"provider": wire, "model": model}], "retry": once}
        for wire in WIRES
        for model in [*(f"echo-{status}" for status in STATUSES), "echo-stream"]
    }
    settings = {"local": {"enabled": False}, "providers": providers, "deployments": deployments}
    gateway = Gateway(settings_from_data(settings), None)
    rows: list[LedgerRow] = []
    meter = Meter(MemoryLimiter(), rows.append, lambda: gateway)
    chat, embeddings = ChatService(gateway), EmbeddingService(gateway)
    yield Pipeline(chat, embeddings, meter, default_stages(None), set())
    await gateway.aclose()


def _leaks(text: str) -> list[str]:
    """The secrets, or the first half of one, found in ``text``."""
    return [s for s in SECRETS if s[: len(s) // 2] in text]


def _rendered(err: ModelyardError) -> str:
    bodies = [
        openai_errors.error_body(err),
        openai_errors.stream_error_frame(err),
        anthropic_errors.error_body(err, "req"),
        anthropic_errors.stream_error_frame(err, "req"),
    ]
    return " ".join(body.decode() for body in bodies) + str(err) + repr(err)


async def _error_of(pipeline: Pipeline, model: str, stream: bool) -> ModelyardError:
    request = ChatRequest(model, [Message("user", (TextPart("hi"),))], stream=stream)
    caller = Caller(PRINCIPAL, f"req-{model}", "/v1/chat/completions")
    with pytest.raises(ModelyardError) as raised:
        if not stream:
            await pipeline.complete(caller, request)
        else:
            streaming = await pipeline.stream(caller, request)
            try:
                async for _ in streaming.events:
                    pass
            finally:
                await streaming.aclose()
    return raised.value


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("wire", WIRES)
async def test_an_error_quoting_our_headers_reaches_the_client_scrubbed(
    pipeline: Pipeline,
    hostile: Hostile,
    caplog: pytest.LogCaptureFixture,
    wire: str,
    status: int,
    stream: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    before = hostile.hits[f"echo-{status}"]
    err = await _error_of(pipeline, f"{wire}-echo-{status}", stream)
    assert hostile.hits[f"echo-{status}"] == before + 1
    text = _rendered(err)
    assert "received these headers" in text  # relayed (401/403 texts never are: not tested)
    assert _leaks(text) == []
    assert _leaks(caplog.text) == []


@pytest.mark.parametrize("wire", WIRES)
async def test_an_in_stream_error_quoting_our_headers_is_scrubbed(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture, wire: str
) -> None:
    caplog.set_level(logging.DEBUG)
    err = await _error_of(pipeline, f"{wire}-echo-stream", True)
    text = _rendered(err)
    assert "received these headers" in text
    assert _leaks(text) == []
    assert _leaks(caplog.text) == []
