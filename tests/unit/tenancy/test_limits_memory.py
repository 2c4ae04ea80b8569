"""What only the memory backend does: forgetting what no longer limits anyone."""

from __future__ import annotations

from modelyard.tenancy.limits import MemoryLimiter, Scope
from tests.unit.tenancy.conftest import FakeClock


async def test_idle_full_buckets_and_past_periods_are_dropped() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock)
    for i in range(500):
        scope = Scope(f"key:{i}", rpm=10, tpm=1000, daily_budget_micros=100)
        await limiter.settle(await limiter.acquire([scope], 1, 1), 1, 1)
    indebted = await limiter.acquire([Scope("key:debt", tpm=1000)], 100, 0)
    await limiter.settle(indebted, 5000, 0)  # 4,000 tokens of debt: 5 minutes to full
    in_flight = await limiter.acquire([Scope("key:busy", daily_budget_micros=100)], 0, 10)
    assert len(limiter._counters) == 502  # by scope name, both buckets of one scope together
    assert len(limiter._spend) == 501

    clock.advance(61)  # everything refilled but the debt
    await limiter.acquire([], 0, 0)
    assert list(limiter._counters) == ["key:debt"]
    assert len(limiter._spend) == 501  # today's spend stays

    clock.advance(86_400)  # the next day: yesterday's spend goes, unless still reserved
    await limiter.acquire([], 0, 0)
    assert limiter._counters == {}
    assert list(limiter._spend) == [("day:2026-12-02", "key:busy")]
    await limiter.settle(in_flight, 0, 10)
    clock.advance(61)
    await limiter.acquire([], 0, 0)
    assert limiter._spend == {}
