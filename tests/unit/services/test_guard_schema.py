"""The JSON-schema guard on whole answers: a mismatch is retried once with the problem named,
then blocked (or flagged); the retry is a metered step of the call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from tests.fakes import FakeOpenAI
from tests.fakes.openai_chat import REFUSAL

from modelyard.config import ConfigError
from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, ResponseFormat, TextPart
from modelyard.core.errors import ContentBlocked
from modelyard.core.events import Finished, RefusalDelta, StreamEvent, TextDelta
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

KEY = "sk-schema-test-0123456789"
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
OTHER = {"type": "object", "properties": {"m": {"type": "string"}}, "required": ["m"]}


def _answer(model: str, content: str) -> Response:
    return JSONResponse(
        {
            "id": "chatcmpl-s",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
        }
    )


async def _learns(_request: Request, body: dict[str, Any]) -> Response:
    """Wrong first; right once told what was wrong."""
    told = "does not match the required JSON schema" in body["messages"][-1]["content"]
    return _answer(body["model"], '{"n": 3}' if told else '{"n": "three"}')


async def _stubborn(_request: Request, body: dict[str, Any]) -> Response:
    return _answer(body["model"], "three")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as server:
        server.script("learns", _learns)
        server.script("stubborn", _stubborn)
        yield server


def _settings(fake: FakeOpenAI, phases: list[str]) -> Any:
    def dep(model: str) -> dict[str, Any]:
        return {"targets": [{"provider": "fake", "model": model}]}

    check = {"kind": "json_schema", "phases": phases, "action": "block"}
    return settings_from_data(
        {
            "local": {"enabled": False},
            "providers": {
                "fake": {"type": "openai_compatible", "base_url": fake.base_url, "api_key": KEY}
            },
            "deployments": {
                "learns": dep("learns"),
                "stubborn": dep("stubborn"),
                "never": dep("stubborn"),
                "streamed": dep("gpt-4o-mini"),
                "streamed-other": dep("gpt-4o-mini"),
                "streamed-flag": dep("gpt-4o-mini"),
            },
            "guardrails": {
                "policies": {
                    "schema": {"guards": [check]},
                    "flag": {"guards": [{**check, "action": "flag", "settings": {"retries": 0}}]},
                    "other": {"guards": [{**check, "settings": {"schema": OTHER}}]},
                    "other-flag": {
                        "guards": [{**check, "action": "flag", "settings": {"schema": OTHER}}]
                    },
                },
                "deployments": {
                    "learns": "schema",
                    "stubborn": "flag",
                    "never": "schema",
                    "streamed": "schema",
                    "streamed-other": "other",
                    "streamed-flag": "other-flag",
                },
            },
        }
    )


@pytest.fixture
async def setup(fake: FakeOpenAI) -> AsyncIterator[tuple[Pipeline, list[LedgerRow]]]:
    gateway = Gateway(_settings(fake, ["output"]), None)
    rows: list[LedgerRow] = []
    meter = Meter(MemoryLimiter(), rows.append, lambda: gateway)
    stages = default_stages(None, *guard_stages(gateway.policies))
    yield Pipeline(ChatService(gateway), EmbeddingService(gateway), meter, stages, set()), rows
    await gateway.aclose()


def _ask(model: str, stream: bool = False) -> ChatRequest:
    return ChatRequest(
        model,
        [Message("user", (TextPart("how many?"),))],
        response_format=ResponseFormat("json_schema", SCHEMA, "count"),
        stream=stream,
    )


CALLER = Caller(Principal("key000000001"), "req-s", "/v1/chat/completions")


async def test_a_mismatch_is_retried_once_with_the_problem_named(
    setup: tuple[Pipeline, list[LedgerRow]], fake: FakeOpenAI
) -> None:
    pipeline, rows = setup
    answer = await pipeline.complete(CALLER, _ask("learns"))
    assert answer.result.choices[0].message.text() == '{"n": 3}'
    told = fake.requests[-1].json["messages"][-1]["content"]
    assert 'at n: "three" is not of type "integer"' in told
    # The retry is a step of the call: its own row, linked to the call's.
    assert [(r[0], r[21]) for r in rows] == [("req-s.schema-retry", "req-s"), ("req-s", None)]
    assert answer.ticket is not None and answer.ticket.guardrails is not None
    assert "json_schema:output:flag:schema_retried" in answer.ticket.guardrails


async def test_still_wrong_after_the_retry_is_blocked(
    setup: tuple[Pipeline, list[LedgerRow]], fake: FakeOpenAI
) -> None:
    pipeline, rows = setup
    before = len(fake.requests)
    with pytest.raises(ContentBlocked) as info:
        await pipeline.complete(CALLER, _ask("never"))
    assert (info.value.guard, info.value.category, info.value.status) == (
        "json_schema",
        "schema_mismatch",
        400,
    )
    assert len(fake.requests) == before + 2  # the answer and one retry, no more
    assert rows[-1][9] == 400 and "schema_mismatch" in (rows[-1][22] or "")


async def test_a_flag_guard_without_retries_passes_and_records(
    setup: tuple[Pipeline, list[LedgerRow]],
) -> None:
    pipeline, rows = setup
    answer = await pipeline.complete(CALLER, _ask("stubborn"))
    assert answer.result.choices[0].message.text() == "three"
    assert rows[-1][22] == "json_schema:output:flag:schema_mismatch:1.00"


async def test_no_schema_no_check(setup: tuple[Pipeline, list[LedgerRow]]) -> None:
    pipeline, _ = setup
    plain = ChatRequest("stubborn", [Message("user", (TextPart("hi"),))])
    assert (await pipeline.complete(CALLER, plain)).result.choices[0].message.text() == "three"


def test_json_schema_checks_answers_only(fake: FakeOpenAI) -> None:
    with pytest.raises(ConfigError, match=r"guards\[0\]\.phases: json_schema checks answers"):
        Gateway(_settings(fake, ["input"]), None)


# Streams: checked once, at the finish, before the held-back end goes out; no retry (the rest
# of the answer has gone out). The fake streams a sample of the request's schema.


async def _streamed(pipeline: Pipeline, model: str, got: list[StreamEvent]) -> None:
    streaming = await pipeline.stream(CALLER, _ask(model, stream=True))
    try:
        async for event in streaming.events:
            got.append(event)
    finally:
        await streaming.aclose()


def _text(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_a_stream_that_matches_passes_whole(
    setup: tuple[Pipeline, list[LedgerRow]],
) -> None:
    pipeline, rows = setup
    got: list[StreamEvent] = []
    await _streamed(pipeline, "streamed", got)
    assert isinstance(orjson.loads(_text(got))["n"], int)
    assert any(isinstance(e, Finished) for e in got) and rows[-1][22] is None


async def test_a_stream_that_does_not_match_ends_blocked_without_a_retry(
    setup: tuple[Pipeline, list[LedgerRow]], fake: FakeOpenAI
) -> None:
    pipeline, rows = setup
    before = len(fake.requests)
    got: list[StreamEvent] = []
    with pytest.raises(ContentBlocked) as info:
        await _streamed(pipeline, "streamed-other", got)
    assert info.value.category == "schema_mismatch" and info.value.phase == "output"
    assert not any(isinstance(e, Finished) for e in got)
    assert len(fake.requests) == before + 1  # no retry
    assert rows[-1][9] == 400 and "schema_mismatch" in (rows[-1][22] or "")


async def test_a_flagged_stream_mismatch_passes_with_its_verdict(
    setup: tuple[Pipeline, list[LedgerRow]],
) -> None:
    pipeline, rows = setup
    got: list[StreamEvent] = []
    await _streamed(pipeline, "streamed-flag", got)
    assert "n" in orjson.loads(_text(got))
    assert rows[-1][22] == "json_schema:output:flag:schema_mismatch:1.00"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_refusal_instead_of_json_is_not_a_mismatch(
    setup: tuple[Pipeline, list[LedgerRow]], fake: FakeOpenAI, stream: bool
) -> None:
    """Structured outputs let a model that declines say so (``refusal``) instead of writing
    JSON: that passes the schema guard, unretried (the fake refuses "please refuse")."""
    pipeline, rows = setup
    request = ChatRequest(
        "streamed",
        [Message("user", (TextPart("please refuse"),))],
        response_format=ResponseFormat("json_schema", SCHEMA, "count"),
        stream=stream,
    )
    before = len(fake.requests)
    if stream:
        streaming = await pipeline.stream(CALLER, request)
        try:
            got = [e async for e in streaming.events]
        finally:
            await streaming.aclose()
        refusal = "".join(e.text for e in got if isinstance(e, RefusalDelta))
    else:
        answer = await pipeline.complete(CALLER, request)
        refusal = answer.result.choices[0].message.refusal or ""
    assert refusal == REFUSAL
    assert len(fake.requests) == before + 1  # no retry
    assert rows[-1][9] == 200 and rows[-1][22] is None
