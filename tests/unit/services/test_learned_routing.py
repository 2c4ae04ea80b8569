"""The ``learned`` strategy through the pipeline, against a fake upstream speaking OpenAI's wire
format: a router trained here splits a request stream between a strong and a weak target, the
ledger (through the real SQLite store, revision 0009) shows the split with each decision and
score, the opt-out header keeps the configured order, and failover still applies."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import FakeOpenAI

from modelyard.config import ConfigError
from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.routing import features as F
from modelyard.routing.model import dumps
from modelyard.routing.training import Example, fit
from modelyard.services.chat import ChatService
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.metering import Meter
from modelyard.services.pipeline import Caller, Pipeline
from modelyard.services.stages import default_stages
from modelyard.store import open_store
from modelyard.store.usage import LedgerRow, UsageLedger
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits_memory import MemoryLimiter
from modelyard.tenancy.model import UsageFilter

UPSTREAM_KEY = "sk-learned-test-0123456789"
PRINCIPAL = Principal("key000000001", project_id="p1")
HARD = ("integral", "proof", "theorem", "derivative", "lemma")
EASY = ("capital", "colour", "animal", "greeting", "weather")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(0)
    examples = []
    for i in range(300):
        hard = i % 2 == 0
        text = f"please help with the {rng.choice(HARD if hard else EASY)} number {i}"
        examples.append(Example(text, F.facts(text), hard))
    path = tmp_path_factory.mktemp("router") / "r.router"
    path.write_bytes(dumps(fit(examples, {"trained_on": "synthetic"})))
    return path


def _settings(fake: FakeOpenAI, router: dict[str, Any], strong: str = "gpt-4o") -> Any:
    upstream = {"type": "openai_compatible", "base_url": fake.base_url, "api_key": UPSTREAM_KEY}
    return settings_from_data(
        {
            "local": {"enabled": False},
            "providers": {"fake": upstream},
            "deployments": {
                "auto": {
                    "strategy": "learned",
                    "router": router,
                    "targets": [
                        {"provider": "fake", "model": strong},
                        {"provider": "fake", "model": "gpt-4o-mini"},
                    ],
                }
            },
        }
    )


@pytest.fixture
async def gateway(fake: FakeOpenAI, artifact: Path) -> AsyncIterator[Gateway]:
    router = {"artifact": str(artifact), "strong": "fake/gpt-4o", "threshold": 0.5}
    built = Gateway(_settings(fake, router), None)
    yield built
    await built.aclose()


def _pipeline(gateway: Gateway, rows: list[LedgerRow]) -> Pipeline:
    meter = Meter(MemoryLimiter(), rows.append, lambda: gateway)
    chat, embeddings = ChatService(gateway), EmbeddingService(gateway)
    return Pipeline(chat, embeddings, meter, default_stages(None), set())


def _ask(text: str) -> ChatRequest:
    return ChatRequest("auto", [Message("user", (TextPart(text),))])


async def _ledger(rows: list[LedgerRow], tmp_path: Path) -> list[tuple[str | None, str | None]]:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    try:
        async with store.transaction() as session:
            await UsageLedger(session).append(rows)
        async with store.transaction() as session:
            back = await UsageLedger(session).records(UsageFilter(project_id="p1"))
    finally:
        await store.aclose()
    return [(r.model, r.route) for r in sorted(back, key=lambda r: r.request_id)]


async def test_a_request_stream_is_split_and_the_ledger_shows_it(
    gateway: Gateway, tmp_path: Path
) -> None:
    rows: list[LedgerRow] = []
    pipeline = _pipeline(gateway, rows)
    prompts = [f"the {w} question, variant {i}" for i in range(3) for w in (*HARD, *EASY)]
    for n, text in enumerate(prompts):
        answer = await pipeline.complete(Caller(PRINCIPAL, f"req-{n:03}", "/v1/x"), _ask(text))
        assert answer.served.route is not None
    got = await _ledger(rows, tmp_path)
    assert len(got) == len(prompts)
    for text, (model, route) in zip(prompts, got, strict=True):
        assert route is not None
        mode, choice, score = route.split(":")[1:]
        assert mode == "threshold" and 0.0 <= float(score) <= 1.0
        want = "strong" if any(w in text for w in HARD) else "weak"
        assert choice == want, (text, route)
        assert model == ("gpt-4o" if want == "strong" else "gpt-4o-mini")


async def test_the_opt_out_header_keeps_the_configured_order(gateway: Gateway) -> None:
    rows: list[LedgerRow] = []
    pipeline = _pipeline(gateway, rows)
    headers = {"x-modelyard-routing": "off"}
    caller = Caller(PRINCIPAL, "req-off", "/v1/x", headers=headers.get)
    answer = await pipeline.complete(caller, _ask("the capital question"))
    assert (answer.served.model, answer.served.route) == ("gpt-4o", "learned:off")


async def test_failover_still_applies_after_the_choice(fake: FakeOpenAI, artifact: Path) -> None:
    router = {"artifact": str(artifact), "strong": "fake/fail-503", "threshold": 0.5}
    gateway = Gateway(_settings(fake, router, strong="fail-503"), None)
    try:
        answer = await _pipeline(gateway, []).complete(
            Caller(PRINCIPAL, "req-fo", "/v1/x"), _ask("the theorem question")
        )
    finally:
        await gateway.aclose()
    assert answer.served.model == "gpt-4o-mini" and answer.served.attempts == 2
    assert answer.served.route is not None and ":strong:" in answer.served.route


def test_a_missing_artifact_is_a_config_error_naming_the_field(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    router = {"artifact": str(tmp_path / "nope.router"), "strong": "fake/gpt-4o"}
    with pytest.raises(ConfigError, match=r"deployments\.auto\.router\.artifact"):
        Gateway(_settings(fake, router), None)


def test_the_strong_target_must_be_one_of_the_targets(fake: FakeOpenAI, artifact: Path) -> None:
    with pytest.raises(ConfigError, match=r"router\.strong must be one of the targets"):
        _settings(fake, {"artifact": str(artifact), "strong": "fake/other"})


async def test_semantic_rules_route_through_the_pipeline(fake: FakeOpenAI) -> None:
    upstream = {"type": "openai_compatible", "base_url": fake.base_url, "api_key": UPSTREAM_KEY}
    settings = settings_from_data(
        {
            "local": {"enabled": False},
            "providers": {"fake": upstream},
            "deployments": {
                "auto": {
                    "strategy": "semantic",
                    "rules": [{"target": "fake/gpt-4o", "keywords": ["proof"]}],
                    "targets": [
                        {"provider": "fake", "model": "gpt-4o-mini"},
                        {"provider": "fake", "model": "gpt-4o"},
                    ],
                }
            },
        }
    )
    gateway = Gateway(settings, None)
    rows: list[LedgerRow] = []
    try:
        pipeline = _pipeline(gateway, rows)
        for n, text in enumerate(("a proof please", "a poem please")):
            await pipeline.complete(Caller(PRINCIPAL, f"s-{n}", "/v1/x"), _ask(text))
    finally:
        await gateway.aclose()
    got = [(row[8], row[23]) for row in rows]  # LedgerRow: model, route
    assert got == [("gpt-4o", "semantic:0:keyword"), ("gpt-4o-mini", "semantic:none")]
