"""Issue 23's end-to-end proof: an eval run over two deployments, stored, trains a router that
then routes a request stream, and the ledger shows the split.

Both deployments answer through the pipeline from a fake upstream that speaks OpenAI's wire
format and echoes the prompt. The weak one is capped at six words of answer by its target
parameters, so it gets right the cases whose answer comes early in the prompt and misses the
others; the router has to learn that from the prompts' words alone.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import FakeOpenAI

from modelyard.cli.main import main
from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.evals.datasets import Dataset, parse_dataset
from modelyard.evals.routing_eval import train_from_data
from modelyard.evals.routing_runs import from_runs
from modelyard.evals.runner import CallOutcome, RunOptions, run_eval
from modelyard.evals.store_recorder import StoreRecorder
from modelyard.services.chat import ChatService
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.metering import Meter
from modelyard.services.pipeline import Caller, Pipeline
from modelyard.services.stages import default_stages
from modelyard.store import Store, open_store
from modelyard.store.usage import LedgerRow, UsageLedger
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits_memory import MemoryLimiter
from modelyard.tenancy.model import UsageFilter

UPSTREAM_KEY = "sk-router-e2e-0123456789"
PRINCIPAL = Principal("key000000001", project_id="p1")
WEAK_CAP = {"max_tokens": 6}
EASY = ("capital", "colour", "animal", "river", "greeting")
HARD = ("integral", "theorem", "derivative", "lemma", "eigenvalue")


def _prompt(kind: str, word: str, n: int) -> str:
    if kind == "easy":  # the answer is the 3rd word: inside the weak model's six
        return f"Answer {n} about the {word} please"
    return f"Work through the {word} step by step and then answer {n}"


def _dataset_text() -> str:
    lines = []
    for i, (kind, words) in enumerate(itertools.islice(itertools.cycle(
        [("easy", EASY), ("hard", HARD)]), 60)):  # fmt: skip
        text = _prompt(kind, words[i % 5], 100 + i)
        lines.append(
            f'{{"id": "c{i}", "input": "{text}", "expected": "{100 + i}", "grader": "contains"}}'
        )
    return "\n".join(lines)


def _dataset() -> Dataset:
    return parse_dataset(_dataset_text(), name="routing-e2e")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY) as server:
        yield server


def _settings(fake: FakeOpenAI, router: dict[str, Any] | None = None) -> Any:
    upstream = {"type": "openai_compatible", "base_url": fake.base_url, "api_key": UPSTREAM_KEY}
    strong = {"provider": "fake", "model": "gpt-4o"}
    weak = {"provider": "fake", "model": "gpt-4o-mini", "params": WEAK_CAP}
    deployments: dict[str, Any] = {"big": {"targets": [strong]}, "small": {"targets": [weak]}}
    if router is not None:
        deployments["auto"] = {"strategy": "learned", "router": router, "targets": [strong, weak]}
    return settings_from_data(
        {"local": {"enabled": False}, "providers": {"fake": upstream}, "deployments": deployments}
    )


def _pipeline(gateway: Gateway, rows: list[LedgerRow]) -> Pipeline:
    meter = Meter(MemoryLimiter(), rows.append, lambda: gateway)
    chat, embeddings = ChatService(gateway), EmbeddingService(gateway)
    return Pipeline(chat, embeddings, meter, default_stages(None), set())


@pytest.fixture
async def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Store]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'modelyard.db'}"
    monkeypatch.setenv("MODELYARD_DATABASE_URL", url)
    monkeypatch.delenv("MODELYARD_CONFIG", raising=False)
    opened = await open_store(url)
    yield opened
    await opened.aclose()


async def _eval_run(fake: FakeOpenAI, store: Store, dataset: Dataset) -> str:
    """The two deployments on the dataset, through the pipeline, recorded in the store."""
    gateway = Gateway(_settings(fake), None)
    pipeline = _pipeline(gateway, [])
    counter = itertools.count()

    async def call(deployment: str, request: ChatRequest) -> CallOutcome:
        request.model = deployment
        caller = Caller(PRINCIPAL, f"eval-{next(counter)}", "/v1/chat/completions")
        answer = await pipeline.complete(caller, request)
        return CallOutcome(text=answer.result.choices[0].message.text())

    recorder = StoreRecorder(store)
    await recorder.save_run("run-e2e", dataset.name, ["big", "small"])
    try:
        report = await run_eval(
            dataset, ["big", "small"], call, recorder=recorder,
            options=RunOptions(run_id="run-e2e"),
        )  # fmt: skip
    finally:
        await gateway.aclose()
    await recorder.finish_run("run-e2e", report)
    assert report.summary("big").score == 1.0 and report.summary("small").score == 0.5
    return report.run_id


async def test_an_eval_run_trains_a_router_that_splits_a_request_stream(
    fake: FakeOpenAI,
    store: Store,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dataset = _dataset()
    run_id = await _eval_run(fake, store, dataset)
    # Training reads the run back from the store, as `modelyard router train --runs` does.
    results = await StoreRecorder(store).results(run_id)
    data = from_runs([(run_id, dataset, results)])
    assert (data.weak_model, data.strong_model) == ("small", "big")
    assert len(data.items) == 60 and train_from_data(data, run_id).model.header["examples"] == 60
    # The command line trains from the stored run the same way (in a thread: it runs its own
    # event loop), reading the store named by MODELYARD_DATABASE_URL and the dataset file.
    artifact, jsonl = tmp_path / "e2e.router", tmp_path / "routing-e2e.jsonl"
    jsonl.write_text(_dataset_text())
    line = f"router train --runs {run_id} --dataset {jsonl} --out {artifact} --json"
    assert await asyncio.to_thread(main, line.split()) == 0
    assert "eval runs run-e2e" in capsys.readouterr().out

    router = {"artifact": str(artifact), "strong": "fake/gpt-4o", "threshold": 0.5}
    gateway = Gateway(_settings(fake, router), None)
    rows: list[LedgerRow] = []
    pipeline = _pipeline(gateway, rows)
    stream = [("easy" if i % 2 else "hard", 500 + i) for i in range(20)]
    try:
        for i, (kind, n) in enumerate(stream):
            words = EASY if kind == "easy" else HARD
            text = _prompt(kind, words[(i * 3) % 5], n)
            request = ChatRequest("auto", [Message("user", (TextPart(text),))])
            answer = await pipeline.complete(Caller(PRINCIPAL, f"r-{i:02}", "/v1/x"), request)
            # Every answer is right: the hard ones went to the uncapped target.
            assert str(n) in answer.result.choices[0].message.text(), (kind, answer.served)
    finally:
        await gateway.aclose()
    async with store.transaction() as session:
        await UsageLedger(session).append(rows)
    async with store.transaction() as session:
        back = await UsageLedger(session).records(UsageFilter(project_id="p1"))
    split = sorted((r.request_id, r.model, (r.route or "").split(":")[2]) for r in back)
    assert split == [
        (f"r-{i:02}", "gpt-4o-mini" if kind == "easy" else "gpt-4o",
         "weak" if kind == "easy" else "strong")
        for i, (kind, _) in enumerate(stream)
    ]  # fmt: skip
