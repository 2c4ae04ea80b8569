"""Shadow traffic through a real server: the client gets the primary's answer without waiting for
the candidate; both answers are stored (flushed at shutdown) for ``modelyard eval shadow``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import openai
import orjson
import pytest

from modelyard.store import open_store
from modelyard.store.shadow_records import ShadowRecord, ShadowRecords
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import run_server

GRADE = ("--mode", "exact", "--json")
# The candidate takes 1.5 s; a primary answer arriving well before that proves nobody waited.
SLOW_CANDIDATE = "slow-1500"


def _config(fake: FakeOpenAI) -> dict[str, object]:
    primary = [{"provider": "fake", "model": "gpt-4o-mini"}]
    return {
        "local": {"enabled": False},
        "providers": {
            "fake": {"type": "openai_compatible", "base_url": fake.base_url, "api_key": "env::K"}
        },
        "prices": {
            "fake/gpt-4o-mini": {"input": 0.15, "output": 0.6},
            f"fake/{SLOW_CANDIDATE}": {"input": 1.0, "output": 2.0},
        },
        "deployments": {
            "mirrored": {
                "targets": primary,
                "shadow": {"provider": "fake", "model": SLOW_CANDIDATE, "percent": 100},
            },
            "sampled": {
                "targets": primary,
                "shadow": {"provider": "fake", "model": "gpt-4o", "percent": 30},
            },
            "broken-candidate": {
                "targets": primary,
                "shadow": {"provider": "fake", "model": "fail-500", "percent": 100},
            },
            "plain": {"targets": primary},
        },
    }


async def _records(data: Path, deployment: str) -> list[ShadowRecord]:
    store = await open_store(f"sqlite+aiosqlite:///{data / 'modelyard.db'}")
    try:
        async with store.transaction() as session:
            return await ShadowRecords(session).list(deployment)
    finally:
        await store.aclose()


def test_shadow_calls_are_recorded_off_the_request_path(
    fake_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    with run_server(tmp_path, _config(fake_upstream), env={"K": UPSTREAM_KEY}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        slowest = 0.0
        for i in range(6):
            t0 = time.perf_counter()
            answer = client.chat.completions.create(
                model="mirrored", messages=[{"role": "user", "content": f"question {i}"}]
            )
            slowest = max(slowest, time.perf_counter() - t0)
            assert answer.choices[0].message.content == f"echo: question {i}"
        t0 = time.perf_counter()
        stream = client.chat.completions.create(
            model="mirrored",
            messages=[{"role": "user", "content": "streamed one"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        slowest = max(slowest, time.perf_counter() - t0)
        assert streamed == "echo: streamed one"
        assert slowest < 1.0, f"a client waited {slowest:.2f}s: the shadow call was awaited"
        for _ in range(3):
            ok = client.chat.completions.create(
                model="broken-candidate", messages=[{"role": "user", "content": "hi"}]
            )
            assert ok.choices[0].message.content == "echo: hi"
        for _ in range(200):
            client.chat.completions.create(
                model="sampled", messages=[{"role": "user", "content": "s"}]
            )
        client.chat.completions.create(model="plain", messages=[{"role": "user", "content": "p"}])
    # The server has stopped gracefully: in-flight shadow calls finished and the queue flushed.
    data = tmp_path / "data"
    mirrored = asyncio.run(_records(data, "mirrored"))
    assert len(mirrored) == 7
    by_question = {orjson.loads(r.request)["messages"][-1]["content"]: r for r in mirrored}
    record = by_question["question 3"]
    assert record.primary_output == "echo: question 3"
    assert record.candidate_output == "echo: question 3"
    assert (record.primary_model, record.candidate_model) == ("gpt-4o-mini", SLOW_CANDIDATE)
    assert record.candidate_latency_ms >= 1500 > record.primary_latency_ms
    assert record.candidate_error is None
    # "question 3" is 2 input tokens and the answer 3 output tokens on the fake.
    assert (record.primary_input_tokens, record.primary_output_tokens) == (2, 3)
    assert record.primary_cost_micros == 2  # 2 * 0.15 + 3 * 0.6 = 2.1 micro-dollars
    assert record.candidate_cost_micros == 8  # 2 * 1.0 + 3 * 2.0
    streamed_record = by_question["streamed one"]
    assert streamed_record.primary_output == "echo: streamed one"
    assert streamed_record.primary_output_tokens == 3  # the usage chunk reached the mirror

    broken = asyncio.run(_records(data, "broken-candidate"))
    assert len(broken) == 3
    assert all(r.candidate_output is None and "500" in (r.candidate_error or "") for r in broken)

    # `modelyard eval shadow` grades the stored pairs: the fake echoes, so they agree.
    config = ("--config", str(tmp_path / "modelyard.yaml"))
    graded = subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "eval", "shadow", "mirrored", *GRADE, *config],
        capture_output=True,
        text=True,
        env={**os.environ, "MODELYARD_DATA_DIR": str(data), "K": UPSTREAM_KEY},
        timeout=120,
        check=False,
    )
    assert graded.returncode == 0, graded.stderr
    report = orjson.loads(graded.stdout)
    summaries = {s["deployment"]: s for s in report["summaries"]}
    assert summaries["candidate"]["score"] == 1.0 and summaries["candidate"]["cases"] == 7
    # Candidate costs come from the records: 8 micro-dollars a call on this config's prices.
    assert summaries["candidate"]["cost_micros"] == 7 * 8

    sampled = len(asyncio.run(_records(data, "sampled")))
    # 30 % of 200: the binomial's standard deviation is 6.5; ±4.5 of them is one in 10^5.
    assert 30 <= sampled <= 90, sampled
    assert asyncio.run(_records(data, "plain")) == []


@pytest.mark.parametrize("percent", [0, 101])
def test_shadow_percent_outside_0_to_100_is_a_config_error(percent: int, tmp_path: Path) -> None:
    from modelyard.config import ConfigError, load_settings

    path = tmp_path / "modelyard.yaml"
    path.write_text(
        "local: {enabled: false}\n"
        "providers: {p: {type: vllm, base_url: 'http://127.0.0.1:9/v1'}}\n"
        "deployments:\n"
        "  d:\n"
        "    targets: [{provider: p, model: m}]\n"
        f"    shadow: {{provider: q, model: m, percent: {percent}}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "deployments.d.shadow.percent" in str(info.value)
