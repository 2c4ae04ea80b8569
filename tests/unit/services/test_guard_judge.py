"""The moderation guard: a judge deployment called through the pipeline (a scripted fake that
speaks OpenAI's wire format), its verdicts, a timeout, fail-open and fail-closed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from tests.fakes import FakeOpenAI
from tests.fakes.openai_chat import REFUSAL

from modelyard.config import ConfigError
from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import ContentBlocked
from modelyard.core.events import Finished, RefusalDelta, StreamEvent, TextDelta, UsageReport
from modelyard.guardrails.moderation import parse_scores
from modelyard.services.chat import ChatService
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.guards import guard_stages
from modelyard.services.metering import Meter
from modelyard.services.pipeline import Caller, Pipeline
from modelyard.services.stages import default_stages
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits_memory import MemoryLimiter

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
                "out-judged": dep("gpt-4o-mini"),
                "out-redacted": dep("gpt-4o-mini"),
                "out-flagged": dep("gpt-4o-mini"),
                "out-closed": dep("gpt-4o-mini"),
                "embed": dep("text-embedding-3-small"),
            },
            "guardrails": {
                "policies": policies,
                "deployments": {
                    "chat": "judged",
                    "open": "open",
                    "closed": "closed",
                    "topical": "topical",
                    "out-judged": "out-judged",
                    "out-redacted": "out-redacted",
                    "out-flagged": "out-flagged",
                    "out-closed": "out-closed",
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


def _moderation(judge: str, phases: tuple[str, ...] = ("input",), **extra: Any) -> dict[str, Any]:
    settings = {"deployment": judge, "timeout_s": 0.3, **extra}
    guard = {"kind": "moderation", "phases": list(phases), "action": "block", "settings": settings}
    return {"guards": [guard]}


def _on_output(judge: str, action: str = "block", **extra: Any) -> dict[str, Any]:
    policy = _moderation(judge, ("output",), **extra)
    policy["guards"][0]["action"] = action
    return policy


def _redacted_then_judged() -> dict[str, Any]:
    settings = {"entities": ["email"]}
    pii = {"kind": "pii", "phases": ["output"], "action": "redact", "settings": settings}
    return {"guards": [pii, *_on_output("judge", "flag")["guards"]]}


def _policies() -> dict[str, Any]:
    return {
        "judged": _moderation("judge"),
        "open": _moderation("stalled-judge"),
        "closed": _moderation("stalled-judge", fail_closed=True),
        "topical": TOPICAL,
        "out-judged": _on_output("judge"),
        "out-redacted": _redacted_then_judged(),
        "out-flagged": _on_output("judge", "flag"),
        "out-closed": _on_output("stalled-judge", fail_closed=True),
    }


@pytest.fixture
async def pipeline(fake: FakeOpenAI) -> AsyncIterator[Pipeline]:
    policies = _policies()
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
    fine = _policies()
    with pytest.raises(ConfigError, match=r"settings\.deployment: no deployment 'nope'"):
        Gateway(_settings(fake, {**fine, "judged": _moderation("nope")}), None)
    tools = _moderation("judge", ("input", "tool_input"))
    with pytest.raises(ConfigError, match=r"guards\[0\]\.phases: .* tool_output and output only"):
        Gateway(_settings(fake, {**fine, "judged": tools}), None)
    redact = _on_output("judge", "redact")
    with pytest.raises(ConfigError, match=r"guards\[0\]\.action: .* block or flag \(not redact\)"):
        Gateway(_settings(fake, {**fine, "judged": redact}), None)


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


# The judge on the answer: whole answers are judged before they are returned; a stream's text
# is kept (bounded) and judged at its finish, before the text still held back goes out.


def _stream(model: str, text: str) -> ChatRequest:
    return ChatRequest(model, [Message("user", (TextPart(text),))], stream=True)


async def _streamed(pipeline: Pipeline, model: str, text: str, got: list[StreamEvent]) -> None:
    streaming = await pipeline.stream(CALLER, _stream(model, text))
    try:
        async for event in streaming.events:
            got.append(event)
    finally:
        await streaming.aclose()


def _judge_calls(fake: FakeOpenAI) -> int:
    return sum(r.json.get("model") == "judge-model" for r in fake.requests if r.json)


async def test_the_judge_blocks_a_whole_answer(pipeline: Pipeline, fake: FakeOpenAI) -> None:
    before = _judge_calls(fake)
    with pytest.raises(ContentBlocked) as info:
        await pipeline.complete(CALLER, _ask("out-judged", "you are despicable"))
    blocked = info.value
    assert (blocked.guard, blocked.category, blocked.phase) == ("moderation", "hate", "output")
    assert "despicable" in fake.requests[-1].json["messages"][-1]["content"]  # the answer judged
    answer = await pipeline.complete(CALLER, _ask("out-judged", "have a lovely day"))
    assert answer.result.choices[0].message.text() == "echo: have a lovely day"
    assert _judge_calls(fake) == before + 2


async def test_a_flagging_judge_passes_the_answer_with_its_verdict(pipeline: Pipeline) -> None:
    answer = await pipeline.complete(CALLER, _ask("out-flagged", "you are despicable"))
    assert answer.result.choices[0].message.text() == "echo: you are despicable"
    assert answer.ticket is not None
    assert answer.ticket.guardrails == "moderation:output:flag:hate:0.93"


async def test_the_judge_blocks_a_stream_at_its_end_and_the_held_text_never_goes_out(
    pipeline: Pipeline,
) -> None:
    words = " ".join(f"w{n}" for n in range(100))  # longer than the hold-back: some goes out
    got: list[StreamEvent] = []
    with pytest.raises(ContentBlocked) as info:
        await _streamed(pipeline, "out-judged", f"{words} despicable", got)
    assert (info.value.category, info.value.phase) == ("hate", "output")
    sent = "".join(e.text for e in got if isinstance(e, TextDelta))
    assert sent.startswith("echo: w0 w1 ") and "despicable" not in sent
    assert not any(isinstance(e, Finished) for e in got)  # the stream ends with the error


async def test_a_clean_stream_is_judged_then_released_whole(
    pipeline: Pipeline, fake: FakeOpenAI
) -> None:
    before = _judge_calls(fake)
    got: list[StreamEvent] = []
    await _streamed(pipeline, "out-judged", "have a lovely day", got)
    assert "".join(e.text for e in got if isinstance(e, TextDelta)) == "echo: have a lovely day"
    assert isinstance(got[-1], Finished | UsageReport)
    assert _judge_calls(fake) == before + 1  # once per answer, not per delta


async def test_an_unavailable_judge_on_a_stream_fails_closed(pipeline: Pipeline) -> None:
    got: list[StreamEvent] = []
    with pytest.raises(ContentBlocked) as info:
        await _streamed(pipeline, "out-closed", "hello there", got)
    assert info.value.category == "judge_unavailable"
    assert not [e for e in got if isinstance(e, TextDelta) and e.text]  # short: all was held


# The judge reads the answer as the client gets it: after the output's redactions, whole or
# streamed (the judge may be another vendor's model; what is redacted must not reach it).
EMAIL = "ada.lovelace@example.org"


def _judged_texts(fake: FakeOpenAI, since: int) -> list[str]:
    asked = [r.json for r in fake.requests[since:] if r.json]
    return [b["messages"][-1]["content"] for b in asked if b.get("model") == "judge-model"]


async def test_the_judge_reads_a_whole_answer_after_its_redactions(
    pipeline: Pipeline, fake: FakeOpenAI
) -> None:
    since = len(fake.requests)
    answer = await pipeline.complete(CALLER, _ask("out-redacted", f"write to {EMAIL} today"))
    assert answer.result.choices[0].message.text() == "echo: write to [EMAIL_1] today"
    (judged,) = _judged_texts(fake, since)
    assert "[EMAIL_1]" in judged and EMAIL not in judged


async def test_the_judge_reads_a_streamed_answer_after_its_redactions(
    pipeline: Pipeline, fake: FakeOpenAI
) -> None:
    since = len(fake.requests)
    words = " ".join(f"w{n}" for n in range(60))  # longer than the hold-back, email at the end
    got: list[StreamEvent] = []
    await _streamed(pipeline, "out-redacted", f"{words} write to {EMAIL}", got)
    sent = "".join(e.text for e in got if isinstance(e, TextDelta))
    assert sent == f"echo: {words} write to [EMAIL_1]"
    (judged,) = _judged_texts(fake, since)
    assert judged.count("[EMAIL_1]") == 1 and EMAIL not in judged and "w59 write to" in judged
    assert isinstance(got[-1], Finished | UsageReport)


@pytest.mark.parametrize("stream", [False, True])
async def test_the_judge_reads_a_refusal(
    pipeline: Pipeline, fake: FakeOpenAI, stream: bool
) -> None:
    """A refusal is the model's own words too: the judge is shown it (the fake upstream
    refuses when asked to "please refuse")."""
    since = len(fake.requests)
    if stream:
        got: list[StreamEvent] = []
        await _streamed(pipeline, "out-flagged", "please refuse", got)
        sent = "".join(e.text for e in got if isinstance(e, RefusalDelta))
    else:
        answer = await pipeline.complete(CALLER, _ask("out-flagged", "please refuse"))
        sent = answer.result.choices[0].message.refusal or ""
    assert sent == REFUSAL
    (judged,) = _judged_texts(fake, since)
    assert REFUSAL in judged
