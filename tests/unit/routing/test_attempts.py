"""The attempt loop with fake providers: failover, retry rules, Retry-After, budget, breakers."""

import random
from collections.abc import AsyncIterator

import pytest

from modelyard.core.errors import (
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamUnavailable,
)
from modelyard.routing import BreakerSettings, Deployment, HealthBoard, RetryPolicy, Target
from modelyard.services.attempts import AttemptLoop
from modelyard.services.gateway import Resolved


class Script:
    """Outcomes per target key, consumed in order; records calls and sleeps."""

    def __init__(self, outcomes: dict[str, list[Exception | str]]) -> None:
        self.outcomes = outcomes
        self.calls: list[str] = []
        self.sleeps: list[float] = []

    async def call(self, chosen: Resolved) -> str:
        self.calls.append(chosen.target.key)
        outcome = self.outcomes[chosen.target.key].pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def _target(key: str) -> Target:
    provider, model = key.split("/")
    return Target(provider, model)


def _loop(keys: list[str], script: Script, board: HealthBoard, **retry: float) -> AttemptLoop:
    dep = Deployment(
        "dep",
        tuple(_target(k) for k in keys),
        retry=RetryPolicy(**retry),  # type: ignore[arg-type]
    )
    plan = [Resolved(dep, t, None, board.of(t.key)) for t in dep.targets]  # type: ignore[arg-type]
    return AttemptLoop(plan, random.Random(0), script.sleep)


@pytest.fixture
def board() -> HealthBoard:
    return HealthBoard(BreakerSettings(failures=2, cooldown_s=60), 0.5)


async def test_fails_over_without_waiting(board):
    script = Script({"p/a": [UpstreamError("boom", upstream_status=500)], "p/b": ["ok"]})
    outcome = await _loop(["p/a", "p/b"], script, board).run(script.call)
    assert outcome.value == "ok" and outcome.attempts == 2
    assert script.sleeps == []


async def test_client_errors_are_not_retried(board):
    script = Script({"p/a": [InvalidRequest("bad field")], "p/b": ["ok"]})
    with pytest.raises(InvalidRequest):
        await _loop(["p/a", "p/b"], script, board).run(script.call)
    assert script.calls == ["p/a"]


async def test_same_target_waits_retry_after(board):
    script = Script({"p/a": [RateLimited("slow", retry_after=2.5), "ok"]})
    outcome = await _loop(["p/a"], script, board).run(script.call)
    assert outcome.value == "ok" and script.sleeps == [2.5]


async def test_budget_stops_long_waits(board):
    script = Script({"p/a": [RateLimited("slow", retry_after=30), "ok"]})
    with pytest.raises(RateLimited) as info:
        await _loop(["p/a"], script, board, budget_s=5).run(script.call)
    assert script.sleeps == [] and "p/a: slow" in info.value.message


async def test_exhausted_names_every_attempt(board):
    errors: dict[str, list[Exception | str]] = {
        "p/a": [UpstreamError("a down", upstream_status=502)] * 3,
        "q/b": [UpstreamUnavailable("b overloaded", upstream_status=503)] * 3,
    }
    script = Script(errors)
    with pytest.raises(UpstreamError) as info:  # the last attempt's kind: p/a again
        await _loop(["p/a", "q/b"], script, board, attempts=3).run(script.call)
    assert info.value.status == 502
    message = info.value.message
    assert message.startswith("deployment 'dep': 3 attempt(s) failed")
    assert "p/a: a down" in message and "q/b: b overloaded" in message


def _misconfigured(message: str, status: int) -> UpstreamError:
    error = UpstreamError(message, upstream_status=status)
    error.same_target = False  # as providers.errors.POLICY marks 401/402/403/404
    return error


async def test_a_misconfigured_target_fails_over_and_is_not_tried_again(board):
    bad_key = _misconfigured("key refused", 401)
    script = Script({"p/a": [bad_key], "q/b": [UpstreamError("b down"), "ok"]})
    outcome = await _loop(["p/a", "q/b"], script, board, attempts=3).run(script.call)
    assert outcome.value == "ok"
    assert script.calls == ["p/a", "q/b", "q/b"]  # b again after a backoff, never a


async def test_a_lone_misconfigured_target_answers_at_once(board):
    script = Script({"p/a": [_misconfigured("no balance", 402)] * 3})
    with pytest.raises(UpstreamError) as info:
        await _loop(["p/a"], script, board, attempts=3).run(script.call)
    assert script.calls == ["p/a"] and script.sleeps == []
    assert info.value.status == 502


async def test_open_breakers_are_skipped_and_fail_fast(board):
    for _ in range(2):
        board.of("p/a").failure()
    script = Script({"p/a": ["never"], "p/b": ["ok"]})
    outcome = await _loop(["p/a", "p/b"], script, board).run(script.call)
    assert outcome.value == "ok" and script.calls == ["p/b"]
    for _ in range(2):
        board.of("p/b").failure()
    with pytest.raises(UpstreamUnavailable) as info:
        await _loop(["p/a", "p/b"], script, board).run(script.call)
    assert info.value.status == 503 and "circuit is open" in info.value.message


async def _unused() -> AsyncIterator[str]:  # keeps the module importable under strict tools
    yield "x"
