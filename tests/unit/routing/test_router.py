import random
from collections import Counter

import pytest

from modelyard.config import ConfigError
from modelyard.config.loader import settings_from_data
from modelyard.core.errors import InvalidRequest, RateLimited, UnsupportedCapability, UpstreamError
from modelyard.core.plugins import PluginError
from modelyard.routing import BreakerSettings, Deployment, HealthBoard, PlanRequest, Router, Target
from modelyard.routing.health import BreakerState, TargetHealth
from modelyard.routing.retry import backoff_s, is_retryable
from modelyard.routing.router import strategies
from modelyard.routing.table import RetryPolicy

A, B, C = Target("p", "a", weight=80), Target("p", "b", weight=20), Target("q", "c", weight=0)


def _router(seed: int = 1) -> Router:
    return Router(HealthBoard(BreakerSettings(), 0.5), random.Random(seed))


def test_failover_keeps_order_and_puts_open_breakers_last():
    router = _router()
    dep = Deployment("d", (A, B, C))
    assert router.plan(PlanRequest(dep)) == [A, B, C]
    for _ in range(5):
        router.health.of(A.key).failure()
    assert router.plan(PlanRequest(dep)) == [B, C, A]


def test_weighted_split_matches_weights():
    router = _router(7)
    dep = Deployment("d", (A, B, C), strategy="weighted")
    firsts = Counter(router.plan(PlanRequest(dep))[0] for _ in range(10_000))
    assert firsts[C] == 0  # weight 0 is never chosen first, only as a fallback
    assert 0.78 < firsts[A] / 10_000 < 0.82
    assert router.plan(PlanRequest(dep))[1:] in ([A, C], [B, C])


def test_sticky_key_pins_a_target():
    router = _router()
    dep = Deployment("d", (A, B), strategy="weighted", sticky_header="x-session")
    picks = {router.plan(PlanRequest(dep, sticky_key="conv-42"))[0] for _ in range(50)}
    assert len(picks) == 1
    spread = {router.plan(PlanRequest(dep, sticky_key=f"c{i}"))[0] for i in range(200)}
    assert spread == {A, B}


def test_latency_prefers_fastest_and_measures_unknown_first():
    router = _router()
    dep = Deployment("d", (A, B, C), strategy="latency")
    router.health.of(A.key).success(0.9)
    router.health.of(B.key).success(0.1)
    assert router.plan(PlanRequest(dep)) == [C, B, A]


def test_cost_orders_by_price_unknown_last():
    router = _router()
    dep = Deployment("d", (A, B, C), strategy="cost")
    prices = {A.key: 10.0, C.key: 1.0}
    plan = router.plan(PlanRequest(dep, price_of=lambda t: prices.get(t.key)))
    assert plan == [C, A, B]


def test_capability_filter():
    router = _router()
    dep = Deployment("d", (A, B))
    plan = router.plan(PlanRequest(dep, capable=lambda t: "image input" if t is A else None))
    assert plan == [B]
    with pytest.raises(UnsupportedCapability) as info:
        router.plan(PlanRequest(dep, capable=lambda t: "image input"))
    assert "'d' does not support image input" in info.value.message


def _state(health: TargetHealth) -> BreakerState:
    return health.state


def test_breaker_opens_half_opens_and_closes():
    health = TargetHealth(BreakerSettings(failures=2, cooldown_s=10))
    health.failure(now=0)
    assert health.available(now=0)
    health.failure(now=1)
    assert health.state == "open" and not health.available(now=5)
    assert health.available(now=12)  # the one half-open probe
    assert not health.available(now=12)  # no second probe while the first is out
    health.failure(now=13)
    assert health.state == "open" and not health.available(now=14)
    assert health.available(now=24)
    health.success(0.2, now=24)
    # Read through a function: mypy would keep the narrowing to "open" from the asserts above.
    assert _state(health) == "closed" and health.available(now=24)


def test_breaker_error_rate_rule():
    health = TargetHealth(
        BreakerSettings(failures=100, error_rate=0.5, min_requests=10, window_s=60)
    )
    for i in range(10):
        health.failure(now=i) if i % 2 else health.success(None, now=i)
    assert health.state == "open"


def test_retryable_rules_and_backoff():
    assert not is_retryable(InvalidRequest("bad"))
    assert is_retryable(RateLimited("slow down"))
    # The class decides, whatever status the upstream sent: one source of truth.
    assert is_retryable(UpstreamError("x", upstream_status=503))
    assert is_retryable(UpstreamError("x", upstream_status=401))
    assert is_retryable(UpstreamError("refused"))
    policy = RetryPolicy(backoff_s=0.1, max_backoff_s=1.0)
    rng = random.Random(3)
    assert all(0 <= backoff_s(policy, 2, rng) <= 0.2 for _ in range(100))
    assert all(backoff_s(policy, 10, rng) <= 1.0 for _ in range(100))


class _Reverse:
    def order(self, targets, req, health, rng):
        return list(reversed(targets))


class _Entry:
    def __init__(self, name: str, target: object = None, error: Exception | None = None) -> None:
        self.name, self.value, self._target, self._error = name, f"pkg:{name}", target, error

    def load(self) -> object:
        if self._error is not None:
            raise self._error
        return self._target


def test_a_plugin_strategy_is_one_registration():
    registry = strategies(entries=[_Entry("reverse", _Reverse())])
    router = Router(HealthBoard(BreakerSettings(), 0.5), random.Random(0), registry)
    dep = Deployment("d", (A, B, C), strategy="reverse")
    assert router.plan(PlanRequest(dep)) == [C, B, A]


def test_strategy_names_are_checked_when_the_config_loads():
    data = {
        "providers": {"p": {"type": "openai_compatible", "base_url": "http://127.0.0.1:1"}},
        "deployments": {"d": {"targets": [{"provider": "p", "model": "m"}], "strategy": "nope"}},
    }
    with pytest.raises(ConfigError) as info:
        settings_from_data(data)
    assert "deployments.d.strategy" in str(info.value)
    assert "unknown routing strategy 'nope'" in str(info.value)


def test_a_broken_strategy_plugin_fails_only_when_named():
    registry = strategies(entries=[_Entry("neural", error=ImportError("no torch"))])
    router = Router(HealthBoard(BreakerSettings(), 0.5), random.Random(0), registry)
    assert router.plan(PlanRequest(Deployment("d", (A, B)))) == [A, B]
    with pytest.raises(PluginError, match="no torch"):
        registry.get("neural")
    with pytest.raises(PluginError, match="is not a strategy"):
        strategies(entries=[_Entry("odd", object())]).get("odd")


def test_breaker_error_rate_forgets_outcomes_older_than_its_window():
    health = TargetHealth(
        BreakerSettings(failures=100, error_rate=0.5, min_requests=10, window_s=30)
    )
    for _ in range(9):
        health.failure(now=0)
    assert health.state == "closed"  # fewer calls than min_requests
    for i in range(10):
        health.success(None, now=40 + i)
    health.failure(now=50)  # 1 of 11 in the window (10 of 20 had the old ones counted)
    assert health.state == "closed"
    assert health.recent(now=50) == (11, 1)


def test_breaker_window_counts_the_last_window_s_whatever_the_rate():
    health = TargetHealth(BreakerSettings(window_s=30))
    for i in range(100_000):  # 1,000 calls a second for 100 s
        health.success(None, now=i / 1000)
    calls, failed = health.recent(now=100)
    assert failed == 0
    assert 29_000 <= calls <= 30_000  # the window, to within one of its 30 slices
