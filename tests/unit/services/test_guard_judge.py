"""The moderation guard: a judge deployment called through the pipeline (a scripted fake that
speaks OpenAI's wire format), its verdicts, a timeout, fail-open and fail-closed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from tests.fakes import FakeOpenAI

from modelyard.config import ConfigError
from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import ContentBlocked
from modelyard.guardrails.moderation import parse_scores
from modelyard.services.chat import ChatService
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.guards import guard_stages
from modelyard.services.metering import Meter
from modelyard.services.pipeline import Caller, Pipeline
from modelyard.services.stages import default_stages
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits import MemoryLimiter

KEY = "sk-judge-test-0123456789"


async def _judge(_request: Request, body: dict[str, Any]) -> Response:
    prompt = body["messages"][-1]["content"]
    text = prompt.split("<<<TEXT")[1]
    hate = 0.93 if "despicable" in text else 0.02
    content = f'Sure. {{"hate": {hate}, "violence": 0.0, "sexual": 0.0, "self_harm": 0.0}}'
    return JSONResponse(
        {
            "id": "chatcmpl-judge",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
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


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as server:
        server.script("judge-model", _judge)
        yield server


def _settings(fake: FakeOpenAI, policies: dict[str, Any]) -> Any:
    def dep(model: str) -> dict[str, Any]:
        return {"targets": [{"provider": "fake", "model": model}], "retry": {"attempts": 1}}

    return settings_from_data(
        {
            "local": {"enabled": False},
            "providers": {
                "fake": {"type": "openai_compatible", "base_url": fake.base_url, "api_key": KEY}
            },
            "deployments": {
                "chat": dep("gpt-4o-mini"),
                "open": dep("gpt-4o-mini"),
                "closed": dep("gpt-4o-mini"),
                "judge": dep("judge-model"),
                "stalled-judge": dep("hang"),
                "topical": dep("gpt-4o-mini"),
                "embed": dep("text-embedding-3-small"),
            },
            "guardrails": {
                "policies": policies,
                "deployments": {
                    "chat": "judged",
                    "open": "open",
                    "closed": "closed",
                    "topical": "topical",
                },
            },
        }
    )


TOPIC = "billing questions about my invoice"
TOPICAL = {
    "guards": [
        {
            "kind": "topics",
            "settings": {"deployment": "embed", "topics": [TOPIC, "refunds"], "threshold": 0.9},
        }
    ]
}


def _moderation(judge: str, **extra: Any) -> dict[str, Any]:
    settings = {"deployment": judge, "timeout_s": 0.3, **extra}
    return {"guards": [{"kind": "moderation", "action": "block", "settings": settings}]}


@pytest.fixture
async def pipeline(fake: FakeOpenAI) -> AsyncIterator[Pipeline]:
    policies = {
        "judged": _moderation("judge"),
        "open": _moderation("stalled-judge"),
        "closed": _moderation("stalled-judge", fail_closed=True),
        "topical": TOPICAL,
    }
    gateway = Gateway(_settings(fake, policies), None)
    meter = Meter(MemoryLimiter(), None, lambda: gateway)
    stages = default_stages(None, *guard_stages(gateway.policies))
    yield Pipeline(ChatService(gateway), EmbeddingService(gateway), meter, stages, set())
    await gateway.aclose()


def _ask(model: str, text: str) -> ChatRequest:
    return ChatRequest(model, [Message("user", (TextPart(text),))])


CALLER = Caller(Principal("key000000001"), "req-j", "/v1/chat/completions")


async def test_the_judge_blocks_what_it_scores_high(pipeline: Pipeline, fake: FakeOpenAI) -> None:
    with pytest.raises(ContentBlocked) as info:
        await pipeline.complete(CALLER, _ask("chat", "you are despicable"))
    assert (info.value.guard, info.value.category) == ("moderation", "hate")
    assert fake.requests[-1].json["model"] == "judge-model"  # the chat model was never called
    answer = await pipeline.complete(CALLER, _ask("chat", "have a lovely day"))
    assert answer.result.choices[0].message.text() == "echo: have a lovely day"


async def test_an_unavailable_judge_fails_open_or_closed(pipeline: Pipeline) -> None:
    answer = await pipeline.complete(CALLER, _ask("open", "hello"))
    assert answer.result.choices[0].message.text() == "echo: hello"
    with pytest.raises(ContentBlocked) as info:
        await pipeline.complete(CALLER, _ask("closed", "hello"))
    assert info.value.category == "judge_unavailable"


def test_judge_guards_are_checked_when_the_config_loads(fake: FakeOpenAI) -> None:
    fine = {"open": _moderation("judge"), "closed": _moderation("judge"), "topical": TOPICAL}
    with pytest.raises(ConfigError, match=r"settings\.deployment: no deployment 'nope'"):
        Gateway(_settings(fake, {**fine, "judged": _moderation("nope")}), None)
    output = _moderation("judge")
    output["guards"][0]["phases"] = ["output"]
    with pytest.raises(ConfigError, match=r"guards\[0\]\.phases: .* input and tool_output only"):
        Gateway(_settings(fake, {**fine, "judged": output}), None)


def test_scores_are_read_from_chatty_answers() -> None:
    cats = ("hate", "self_harm")
    assert parse_scores('ok {"hate": 0.7, "self-harm": 1}', cats) == {"hate": 0.7, "self_harm": 1.0}
    assert parse_scores("no json here", cats) is None
    assert parse_scores('{"hate": "high"}', cats) is None


async def test_topic_allow_list_by_embedding_similarity(
    pipeline: Pipeline, fake: FakeOpenAI
) -> None:
    # The fake's embeddings are a deterministic function of the text: the same text is the same
    # vector (similarity 1), different texts are nearly orthogonal.
    answer = await pipeline.complete(CALLER, _ask("topical", TOPIC))
    assert answer.result.choices[0].message.text() == f"echo: {TOPIC}"
    embedded = [r.json["input"] for r in fake.requests if r.path.endswith("/embeddings")]
    assert embedded[-2:] == [[TOPIC, "refunds"], [TOPIC]]
    with pytest.raises(ContentBlocked) as info:
        await pipeline.complete(CALLER, _ask("topical", "tell me a long story about dragons"))
    assert (info.value.guard, info.value.category) == ("topics", "off_topic")
    short = await pipeline.complete(CALLER, _ask("topical", "thanks!"))  # too short to judge
    assert short.result.choices[0].message.text() == "echo: thanks!"
