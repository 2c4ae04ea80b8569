"""What only the memory backend does: forgetting what no longer limits anyone."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from modelyard.core.errors import BudgetExceeded, LimitExceeded, ModelyardError
from modelyard.tenancy.limits import (
    UNIT,
    Reservation,
    Scope,
    check_scope,
    periods,
    rate_headers,
    refusal,
)
from modelyard.tenancy.limits_memory import MemoryLimiter
from tests.properties import examples
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
    assert (len(limiter._requests), len(limiter._tokens)) == (500, 501)  # by scope name
    assert len(limiter._spend) == 501

    clock.advance(61)  # everything refilled but the debt
    await limiter.acquire([], 0, 0)
    assert (limiter._requests, list(limiter._tokens)) == ({}, ["key:debt"])
    assert len(limiter._spend) == 501  # today's spend stays

    clock.advance(86_400)  # the next day: the month's days stay, its sum is the month's spend
    await limiter.acquire([], 0, 0)
    assert limiter._requests == limiter._tokens == {}
    assert len(limiter._spend) == 501

    clock.advance(30 * 86_400)  # the next month: last month's days go, reserved or not
    await limiter.acquire([], 0, 0)
    assert limiter._spend == {}
    await limiter.settle(in_flight, 0, 10)  # counted in a day no check reads, until the sweep
    assert list(limiter._spend) == [("2026-12-02", "key:busy")]
    clock.advance(61)
    await limiter.acquire([], 0, 0)
    assert limiter._spend == {}


async def test_limits_changed_by_a_reload_apply_to_a_principal_made_before() -> None:
    """A request authenticated just before a reload acquires with the old scopes, after the new
    ones (same names, other limits) have been planned: it is judged by its own scopes' limits,
    as each acquisition always is, and never fails for the buckets having moved under it."""
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock)
    before = (Scope("key:a", rpm=1),)
    lifted = (Scope("key:a"),)  # the reload lifted the RPM: the bucket is forgotten
    limiter.acquire_now((), 0, 0)  # the first sweep: from here on, plans are kept
    limiter.acquire_now(before, 0, 0)
    limiter.acquire_now(lifted, 0, 0)
    # Should the limit come back, its bucket starts full: admitted once, then refused.
    limiter.acquire_now(before, 0, 0)
    with pytest.raises(LimitExceeded, match="1 requests per minute"):
        limiter.acquire_now(before, 0, 0)

    raised = (Scope("key:a", rpm=3),)  # another reload: 3 a minute, from the level it has
    with pytest.raises(LimitExceeded, match="3 requests per minute reached; retry in 20s"):
        limiter.acquire_now(raised, 0, 0)
    clock.advance(20)
    limiter.acquire_now(raised, 0, 0)
    with pytest.raises(LimitExceeded, match="1 requests per minute"):
        limiter.acquire_now(before, 0, 0)


# Small limits and usage, so that scopes often tie on what remains; now and then a huge one.
_limit = st.none() | st.integers(1, 6) | st.integers(1, 6) | st.integers(1, 2_000_000_000)
_pause = st.sampled_from([0, 0, 1.5, 4, 61])


@settings(max_examples=examples(500), deadline=None)
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
        level = []
        for limit, buckets in ((scope.rpm, limiter._requests), (scope.tpm, limiter._tokens)):
            held = buckets.get(scope.name)
            # None: swept as full right after the take (0 tokens from a full bucket)
            level.append(0 if not limit else limit * UNIT if held is None else held.level)
        levels.append((level[0], level[1]))
    assert reservation.headers() == rate_headers(scopes, levels)


class _Reference:
    """The limits as the module's docstring defines them, kept the plainest way: every bucket
    refilled on every use, every spend looked up by its period, nothing cached or forgotten.
    The memory limiter's fast paths (one pass, refunds without a refill, counters dropped
    when full) must be indistinguishable from it."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[str, int], tuple[int, int]] = {}  # (scope, kind) → level, ms
        self.spends: dict[tuple[str, str], list[int]] = {}  # (period, scope) → spent, reserved

    def level(self, scope: Scope, kind: int, now: int) -> int:
        limit = scope.tpm if kind else scope.rpm
        if limit is None:
            return 0
        level, at = self.buckets.get((scope.name, kind), (limit * UNIT, now))
        level = min(limit * UNIT, level + max(0, now - at) * limit)
        self.buckets[scope.name, kind] = (level, now)
        return level

    def spend(self, period: str, scope: Scope) -> list[int]:
        return self.spends.setdefault((period, scope.name), [0, 0])

    def acquire(
        self, scopes: Sequence[Scope], tokens: int, cost: int, now: int
    ) -> tuple[ModelyardError | None, list[tuple[int, int]]]:
        """The refusal (None: admitted) and the levels after the take (before, if refused)."""
        day, month = periods(now)
        levels = [(self.level(s, 0, now), self.level(s, 1, now)) for s in scopes]
        failures = []
        for i, scope in enumerate(scopes):
            committed = (sum(self.spend(day, scope)), sum(self.spend(month, scope)))
            failures += check_scope(i, scope, (*levels[i], *committed), tokens)
        if failures:
            return refusal(scopes, failures, levels, tokens, now), levels
        after = []
        for scope, (rpm_level, tpm_level) in zip(scopes, levels, strict=True):
            for kind, level, taken in ((0, rpm_level, UNIT), (1, tpm_level, tokens * UNIT)):
                if (scope.tpm if kind else scope.rpm) is not None:
                    self.buckets[scope.name, kind] = (level - taken, now)
            for period, budget in _budgets(scope, day, month):
                if budget is not None:
                    self.spend(period, scope)[1] += cost
            after.append((self.level(scope, 0, now), self.level(scope, 1, now)))
        return None, after

    def settle(
        self,
        scopes: Sequence[Scope],
        reserved: tuple[int, int],
        used: tuple[int, int],
        at: int,
        now: int,
    ) -> None:
        extra = used[0] - reserved[0]
        day, month = periods(at)  # the periods the request started in
        for scope in scopes:
            if scope.tpm is not None:
                level = min(scope.tpm * UNIT, self.level(scope, 1, now) - extra * UNIT)
                self.buckets[scope.name, 1] = (level, now)
            for period, budget in _budgets(scope, day, month):
                if budget is not None:
                    spend = self.spend(period, scope)
                    spend[0] += used[1]
                    spend[1] -= reserved[1]


def _budgets_of(scope: Scope) -> tuple[int | None, int | None]:
    return scope.daily_budget_micros, scope.monthly_budget_micros


def _budgets(scope: Scope, day: str, month: str) -> tuple[tuple[str, int | None], ...]:
    return (day, scope.daily_budget_micros), (month, scope.monthly_budget_micros)


_small = st.none() | st.integers(1, 8) | st.integers(1, 8) | st.integers(1, 3_000_000_000)
_budget = st.none() | st.integers(0, 40)
_cost = st.integers(0, 12)
_step = st.one_of(
    st.tuples(st.just("wait"), st.sampled_from([0.001, 0.5, 7.5, 61, 86_400, 2_678_400])),
    # the same limits in new Scope objects, as a reload of the keys brings them
    st.tuples(st.just("reload")),
    st.tuples(st.just("acquire"), st.integers(1, 7), st.integers(0, 9), _cost),
    # settle: which open reservation, tokens used beyond the estimate (a refund if < 0), cost
    st.tuples(st.just("settle"), st.integers(0, 5), st.sampled_from([-9, -1, 0, 1, 2, 7]), _cost),
)


@settings(max_examples=examples(400), deadline=None)
@given(
    limits=st.lists(st.tuples(_small, _small, _budget, _budget), min_size=1, max_size=3),
    steps=st.lists(_step, max_size=25),
)
# A debt settled after the bucket had time to fill: the refill comes first, then the debt.
@example(
    limits=[(None, 8, None, None)], steps=[("acquire", 1, 3, 0), ("wait", 61), ("settle", 0, 1, 0)]
)
# A refund after the bucket refilled and was taken from again.
@example(
    limits=[(None, 8, None, None)],
    steps=[("acquire", 1, 6, 0), ("wait", 61), ("acquire", 1, 1, 0), ("settle", 0, -9, 0)],
)
# A settle after midnight counts in the day the request started.
@example(
    limits=[(None, None, 5, 20)],
    steps=[("acquire", 1, 0, 4), ("wait", 86_400), ("settle", 0, 0, 4), ("acquire", 1, 0, 1)],
)
# A late settle (the request began yesterday) changes what the month has left today, while
# today's plan is in use.
@example(
    limits=[(None, None, None, 10)],
    steps=[
        ("acquire", 1, 0, 8),
        ("wait", 86_400),
        ("acquire", 1, 0, 0),
        ("acquire", 1, 0, 0),
        ("settle", 0, 0, 12),
        ("acquire", 1, 0, 0),
    ],
)
def test_the_memory_limiter_behaves_as_the_plain_definition(
    limits: list[tuple[int | None, int | None, int | None, int | None]],
    steps: list[tuple[Any, ...]],
) -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock)
    reference = _Reference()
    scopes = [Scope(f"s{i}", *limit) for i, limit in enumerate(limits)]
    open_: list[tuple[Reservation, tuple[Scope, ...], int]] = []  # reservation, its scopes, its ms
    # Each subset of the scopes as one tuple, as a principal passes them every time: the
    # limiter's plans for them are kept, and used again, until the day turns or a sweep.
    subsets: dict[int, tuple[Scope, ...]] = {}

    def subset(which: int) -> tuple[Scope, ...]:
        if which not in subsets:
            subsets[which] = tuple(s for i, s in enumerate(scopes) if which >> i & 1)
        return subsets[which]

    def acquire(chosen: tuple[Scope, ...], tokens: int, cost: int) -> None:
        now = round(clock() * 1000)
        expected, levels = reference.acquire(chosen, tokens, cost, now)
        try:
            reservation = limiter.acquire_now(chosen, tokens, cost)
        except ModelyardError as refused:
            assert expected is not None, f"refused, but admitted by definition: {refused}"
            # Only the limits refuse here, and each refusal carries its x-ratelimit-* headers.
            assert isinstance(refused, LimitExceeded | BudgetExceeded)
            assert isinstance(expected, LimitExceeded | BudgetExceeded)
            assert (type(refused), str(refused), refused.headers) == (
                type(expected),
                str(expected),
                expected.headers,
            )
            assert refused.retry_after == expected.retry_after
            return
        assert expected is None, f"admitted, but refused by definition: {expected}"
        assert reservation.headers() == rate_headers(chosen, levels)
        open_.append((reservation, chosen, now))

    for step in steps:
        now = round(clock() * 1000)
        if step[0] == "wait":
            clock.advance(step[1])
        elif step[0] == "reload":
            scopes = [Scope(s.name, s.rpm, s.tpm, *_budgets_of(s)) for s in scopes]
            subsets.clear()
        elif step[0] == "acquire":
            _, which, tokens, cost = step
            acquire(subset(which), tokens, cost)
        elif open_:
            _, index, extra, cost = step
            reservation, chosen, at = open_[index % len(open_)]
            tokens = max(0, reservation.tokens + extra)
            if not reservation.settled:  # a second settle does nothing
                estimate = (reservation.tokens, reservation.cost_micros)
                reference.settle(chosen, estimate, (tokens, cost), at, now)
            limiter.settle_now(reservation, tokens, cost)
    # In the end, every bucket and spend of the limiter is the definition's.
    day, month = periods(round(clock() * 1000))
    for scope in scopes:
        acquire((scope,), 0, 0)  # its headers show both its buckets, or it is refused alike
        # The limiter keeps a spend per day; a month's is the sum of its days'.
        held = {d: s.committed for (d, name), s in limiter._spend.items() if name == scope.name}
        if scope.daily_budget_micros is not None:
            assert held.get(day, 0) == sum(reference.spend(day, scope))
        if scope.monthly_budget_micros is not None:
            in_month = sum(c for d, c in held.items() if d.startswith(month))
            assert in_month == sum(reference.spend(month, scope))
