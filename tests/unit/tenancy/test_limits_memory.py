"""What only the memory backend does: forgetting what no longer limits anyone."""

from __future__ import annotations

import contextlib

from hypothesis import example, given, settings
from hypothesis import strategies as st

from modelyard.core.errors import ModelyardError
from modelyard.tenancy.limits import UNIT, MemoryLimiter, Scope, rate_headers
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


# Small limits and usage, so that scopes often tie on what remains; now and then a huge one.
_limit = st.none() | st.integers(1, 6) | st.integers(1, 6) | st.integers(1, 2_000_000_000)
_pause = st.sampled_from([0, 0, 1.5, 4, 61])


@settings(max_examples=500, deadline=None)
@given(
    limits=st.lists(st.tuples(_limit, _limit), min_size=2, max_size=3),
    earlier=st.lists(st.tuples(_pause, st.integers(1, 7), st.integers(0, 6)), max_size=6),
    tokens=st.integers(0, 6),
)
# Ties on what remains: broken by the lower limit (tokens, requests), then the lower level.
@example(limits=[(None, 3), (None, 5)], earlier=[(0, 2, 2)], tokens=0)
@example(limits=[(3, None), (5, None)], earlier=[(0, 2, 0), (0, 2, 0)], tokens=0)
@example(limits=[(None, 6), (None, 6)], earlier=[(0, 1, 1), (4, 2, 1)], tokens=0)
@example(limits=[(6, None), (6, None)], earlier=[(0, 1, 0), (4, 2, 0)], tokens=0)
def test_the_fast_headers_rank_as_the_general_ones(
    limits: list[tuple[int | None, int | None]],
    earlier: list[tuple[float, int, int]],  # (seconds, which scopes as bits, tokens)
    tokens: int,
) -> None:
    """The memory limiter picks the tightest buckets while it takes; what it picks must be
    what ``rate_headers`` (the Redis limiter's and the refusals' way) picks from the levels."""
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock)
    scopes = [Scope(f"s{i}", rpm=rpm, tpm=tpm) for i, (rpm, tpm) in enumerate(limits)]
    for pause, which, used in earlier:  # some time, then some use of some of the scopes
        clock.advance(pause)
        with contextlib.suppress(ModelyardError):
            limiter.acquire_now([s for i, s in enumerate(scopes) if which >> i & 1], used, 0)
    try:
        reservation = limiter.acquire_now(scopes, tokens, 0)
    except ModelyardError:
        return  # refused: the general path made the headers
    levels = []
    for scope in scopes:
        held = limiter._counters.get(scope.name)
        if held is None:  # swept as full right after the take (0 tokens from a full bucket)
            levels.append(((scope.rpm or 0) * UNIT, (scope.tpm or 0) * UNIT))
        else:
            levels.append((held.rpm_level if scope.rpm else 0, held.tpm_level if scope.tpm else 0))
    assert reservation.headers() == rate_headers(scopes, levels)
