"""Deployments under faults, through a real server: failover, retries, breakers, splits."""

from __future__ import annotations

import concurrent.futures
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def _t(model: str, provider: str = "fake", **extra: object) -> dict[str, object]:
    return {"provider": provider, "model": model, **extra}


@pytest.fixture(scope="module")
def routed(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    tmp: Path = tmp_path_factory.mktemp("routed")
    # Short backoffs; the default budget (60 s): no test here is about the budget, and with 5 s
    # a loaded machine could spend it on a call's first two failures (16 at once in the load
    # test) and never try the healthy third target.
    fast = {"attempts": 3, "backoff_ms": 10, "max_backoff_ms": 50}
    config = {
        "local": {"enabled": False},
        "routing": {"breaker": {"failures": 3, "cooldown_s": 60}},
        "providers": {
            "fake": {
                "type": "openai_compatible",
                "base_url": fake_upstream.base_url,
                "api_key": "env::UP_KEY",
            },
            "refused": {"type": "vllm", "base_url": "http://127.0.0.1:9/v1"},
        },
        "deployments": {
            "resilient": {
                "retry": fast,
                "targets": [_t("fail-500"), _t("x", "refused"), _t("gpt-4o-mini")],
            },
            "doomed": {"retry": fast, "targets": [_t("fail-503"), _t("y", "refused")]},
            "picky": {"retry": fast, "targets": [_t("fail-400"), _t("gpt-4o-mini")]},
            "stalled": {
                "retry": fast,
                "targets": [_t("hang", timeouts={"first_token": 0.3}), _t("gpt-4o-mini")],
            },
            "split": {
                "strategy": "weighted",
                "targets": [_t("model-a", weight=80), _t("model-b", weight=20)],
            },
            "sticky": {
                "strategy": "weighted",
                "sticky_header": "x-session-id",
                "targets": [_t("model-a"), _t("model-b")],
            },
            "breaker": {"retry": fast, "targets": [_t("fail-502"), _t("gpt-4o-mini")]},
        },
    }
    with run_server(tmp, config, env={"UP_KEY": UPSTREAM_KEY}) as server:
        yield server


@pytest.fixture(scope="module")
def rclient(routed: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=routed.base_url, api_key="x", max_retries=0, timeout=30)


def test_failover_reaches_the_healthy_target(rclient: openai.OpenAI):
    raw = rclient.chat.completions.with_raw_response.create(model="resilient", messages=USER)
    assert raw.parse().choices[0].message.content == "echo: hi"
    assert raw.headers["x-modelyard-model"] == "gpt-4o-mini"
    assert raw.headers["x-modelyard-attempts"] == "3"


def test_streams_fail_over_before_the_first_byte(rclient: openai.OpenAI):
    chunks = list(rclient.chat.completions.create(model="resilient", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hi"


def test_with_no_healthy_target_requests_fail_fast_naming_what_was_tried(rclient: openai.OpenAI):
    # How fast is the attempt loop's business (routing/test_attempts.py injects its sleep);
    # here: the failure comes back, names every target, and nothing hangs.
    with pytest.raises(openai.APIStatusError) as info:
        rclient.chat.completions.create(model="doomed", messages=USER)
    assert info.value.status_code in (502, 503)
    assert "fake/fail-503" in info.value.message and "refused/y" in info.value.message


def test_client_errors_are_not_retried(rclient: openai.OpenAI, fake_upstream: FakeOpenAI):
    fake_upstream.clear()
    with pytest.raises(openai.BadRequestError):
        rclient.chat.completions.create(model="picky", messages=USER)
    assert [r.json["model"] for r in fake_upstream.requests] == ["fail-400"]


def test_a_stalled_target_times_out_and_fails_over(rclient: openai.OpenAI):
    # "hang" never answers: only the target's 0.3 s first-token timeout (not the 60 s default)
    # lets the call fail over before the client's own 30 s timeout.
    raw = rclient.chat.completions.with_raw_response.create(model="stalled", messages=USER)
    assert raw.headers["x-modelyard-model"] == "gpt-4o-mini"


def test_weighted_split_within_tolerance(rclient: openai.OpenAI):
    n = 400
    models = Counter(
        rclient.chat.completions.with_raw_response.create(model="split", messages=USER).headers[
            "x-modelyard-model"
        ]
        for _ in range(n)
    )
    # 80 % of 400 has a standard deviation of 8; four of them is a safe band.
    assert abs(models["model-a"] - 320) <= 32, models


def test_sticky_sessions_stay_on_one_target(rclient: openai.OpenAI):
    def model_for(session: str) -> str:
        raw = rclient.chat.completions.with_raw_response.create(
            model="sticky", messages=USER, extra_headers={"x-session-id": session}
        )
        return raw.headers["x-modelyard-model"]

    assert len({model_for("conversation-1") for _ in range(20)}) == 1
    assert len({model_for(f"c-{i}") for i in range(40)}) == 2


def test_breaker_opens_and_skips_the_failing_target(
    rclient: openai.OpenAI, fake_upstream: FakeOpenAI
):
    for _ in range(4):
        rclient.chat.completions.create(model="breaker", messages=USER)
    fake_upstream.clear()
    raw = rclient.chat.completions.with_raw_response.create(model="breaker", messages=USER)
    assert raw.headers["x-modelyard-attempts"] == "1"
    assert [r.json["model"] for r in fake_upstream.requests] == ["gpt-4o-mini"]


@pytest.mark.parametrize("stream", [False, True])
def test_concurrent_load_with_one_healthy_target(rclient: openai.OpenAI, stream: bool):
    def call(_: int) -> str:
        result = rclient.chat.completions.create(model="resilient", messages=USER, stream=stream)
        if stream:
            return "".join(c.choices[0].delta.content or "" for c in result if c.choices)  # type: ignore[union-attr]
        return result.choices[0].message.content or ""  # type: ignore[union-attr]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, range(48)))
    assert answers == ["echo: hi"] * 48
