"""Shadow traffic through a real server: the client gets the primary's answer without waiting for
the candidate; both answers are stored (flushed at shutdown) for ``modelyard eval shadow``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from modelyard.store import open_store
from modelyard.store.shadow_records import ShadowRecord, ShadowRecords
from tests.fakes.openai_chat import REFUSAL, build_answer, completion_body
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.openai_wire import IdFactory
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import run_server
from tests.waiting import DEADLINE_S, wait_until

GRADE = ("--mode", "exact", "--json")
# Held by the test (``HeldCandidate``) until every client has its answer: nobody waited for it.
SLOW_CANDIDATE = "held-candidate"


class HeldCandidate:
    """The shadow candidate: holds every call until ``release``, then answers as the fake does
    after a further ``delay_s`` (longer than any client's whole call, so the candidate's
    recorded latency is the longer one by construction, not by the machine's speed)."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.delay_s = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: asyncio.Event | None = None
        self._ids = IdFactory()

    async def __call__(self, request: Request, body: dict[str, Any]) -> Response:
        if self._open is None:  # the fake serves on one loop: made once, before any wait
            self._loop, self._open = asyncio.get_running_loop(), asyncio.Event()
        if not self.released.is_set():
            async with asyncio.timeout(DEADLINE_S):
                await self._open.wait()
        await asyncio.sleep(self.delay_s)
        return JSONResponse(completion_body(build_answer(body, self._ids)))

    def release(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.released.set()
        if self._loop is not None and self._open is not None:
            self._loop.call_soon_threadsafe(self._open.set)


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
    candidate = HeldCandidate()
    fake_upstream.script(SLOW_CANDIDATE, candidate)
    try:
        _run_shadowed(fake_upstream, candidate, tmp_path)
    finally:
        candidate.release(0.0)
        fake_upstream.unscript(SLOW_CANDIDATE)
    _check_records(tmp_path)


def _candidate_calls(fake: FakeOpenAI) -> int:
    return sum(1 for r in fake.requests if (r.json or {}).get("model") == SLOW_CANDIDATE)


def _run_shadowed(fake_upstream: FakeOpenAI, candidate: HeldCandidate, tmp_path: Path) -> None:
    fake_upstream.clear()
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
        # Every client has its answer and every candidate call is still held: none was awaited.
        wait_until(lambda: _candidate_calls(fake_upstream) == 7, "the 7 candidate calls made")
        assert not candidate.released.is_set()
        candidate.release(slowest + 0.05)
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


def _check_records(tmp_path: Path) -> None:
    # The server has stopped gracefully: in-flight shadow calls finished and the queue flushed.
    data = tmp_path / "data"
    mirrored = asyncio.run(_records(data, "mirrored"))
    assert len(mirrored) == 7
    by_question = {orjson.loads(r.request)["messages"][-1]["content"]: r for r in mirrored}
    record = by_question["question 3"]
    assert record.primary_output == "echo: question 3"
    assert record.candidate_output == "echo: question 3"
    assert (record.primary_model, record.candidate_model) == ("gpt-4o-mini", SLOW_CANDIDATE)
    # The candidate answered after a delay longer than any client's whole call.
    assert record.candidate_latency_ms > record.primary_latency_ms > 0
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


def test_refusals_are_recorded_apart_and_marked(fake_upstream: FakeOpenAI, tmp_path: Path) -> None:
    """A primary and a candidate that both decline (the fake refuses when asked to), whole and
    streamed: each side's refusal is stored apart from its text, which stays empty."""
    config = _config(fake_upstream)
    config["deployments"] = {
        "careful": {
            "targets": [{"provider": "fake", "model": "gpt-4o-mini"}],
            "shadow": {"provider": "fake", "model": "gpt-4o", "percent": 100},
        }
    }
    refuse: Any = [{"role": "user", "content": "please refuse this"}]
    with run_server(tmp_path, config, env={"K": UPSTREAM_KEY}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        whole = client.chat.completions.create(model="careful", messages=refuse)
        assert whole.choices[0].message.refusal == REFUSAL
        chunks = client.chat.completions.create(model="careful", messages=refuse, stream=True)
        assert "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices) == REFUSAL
        answered = client.chat.completions.create(
            model="careful", messages=[{"role": "user", "content": "hi"}]
        )
        assert answered.choices[0].message.content == "echo: hi"
    records = asyncio.run(_records(tmp_path / "data", "careful"))
    assert len(records) == 3
    declined = [r for r in records if r.primary_refused]
    assert len(declined) == 2
    for record in declined:
        assert (record.primary_output, record.primary_refusal) == ("", REFUSAL)
        assert (record.candidate_output, record.candidate_refusal) == ("", REFUSAL)
        assert record.candidate_refused
    (plain,) = [r for r in records if not r.primary_refused]
    assert plain.primary_output == plain.candidate_output == "echo: hi"
    assert plain.primary_refusal is None and plain.candidate_refusal is None
    # `modelyard eval shadow` grades the stored pairs with each side's refusal as a refusal:
    # both declined twice (0, marked), and agreed once.
    config_flag = ("--config", str(tmp_path / "modelyard.yaml"))
    graded = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelyard.cli.main",
            "eval",
            "shadow",
            "careful",
            *GRADE,
            *config_flag,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "MODELYARD_DATA_DIR": str(tmp_path / "data"), "K": UPSTREAM_KEY},
        timeout=120,
        check=False,
    )
    assert graded.returncode == 0, graded.stderr
    report = orjson.loads(graded.stdout)
    for summary in report["summaries"]:
        assert summary["refusals"] == 2 and summary["score"] == pytest.approx(1 / 3)
    refused = [r for r in report["results"] if r["refused"]]
    assert len(refused) == 4 and {r["output"] for r in refused} == {REFUSAL}
