"""The limiter's behaviour, the same for the memory backend and Redis (see conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from modelyard.core.errors import BudgetExceeded, LimitExceeded, RateLimited
from modelyard.tenancy.limits import Limiter, Reservation, Scope, format_duration, periods
from tests.unit.tenancy.conftest import FakeClock


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def admitted(limiter: Limiter, scopes: list[Scope], n: int, tokens: int = 0) -> int:
    count = 0
    for _ in range(n):
        try:
            await limiter.acquire(scopes, tokens, 0)
            count += 1
        except LimitExceeded:
            pass
    return count


# --- requests per minute -------------------------------------------------------------------


async def test_a_burst_of_exactly_the_limit_is_admitted(limiter: Limiter) -> None:
    key = Scope("key:abc", rpm=5)
    assert await admitted(limiter, [key], 8) == 5
    with pytest.raises(LimitExceeded) as info:
        await limiter.acquire([key], 0, 0)
    err = info.value
    assert isinstance(err, RateLimited)
    assert err.status == 429
    assert err.code == "rate_limit_exceeded"
    assert (err.scope, err.limit) == ("key:abc", "requests")
    assert err.retry_after == 12.0  # one request refills in 60/5 s
    assert err.message == "key abc: 5 requests per minute reached; retry in 12s"


async def test_requests_refill_continuously(limiter: Limiter, clock: FakeClock) -> None:
    key = Scope("key:abc", rpm=6)  # one every 10 s
    assert await admitted(limiter, [key], 6) == 6
    clock.advance(9.999)
    assert await admitted(limiter, [key], 1) == 0
    clock.advance(0.001)
    assert await admitted(limiter, [key], 3) == 1
    clock.advance(25)  # two and a half more
    assert await admitted(limiter, [key], 3) == 2
    clock.advance(3600)  # never more than the burst
    assert await admitted(limiter, [key], 10) == 6


async def test_retry_after_is_the_time_until_enough_refills(
    limiter: Limiter, clock: FakeClock
) -> None:
    key = Scope("key:abc", rpm=60)
    assert await admitted(limiter, [key], 60) == 60
    clock.advance(0.25)
    with pytest.raises(LimitExceeded) as info:
        await limiter.acquire([key], 0, 0)
    assert info.value.retry_after == 0.75
    assert "retry in 1s" in info.value.message


# --- tokens per minute ---------------------------------------------------------------------


async def test_tokens_are_reserved_and_settled_up(limiter: Limiter) -> None:
    key = Scope("key:abc", tpm=1000)
    r = await limiter.acquire([key], 600, 0)
    assert r.headers()["x-ratelimit-remaining-tokens"] == "400"
    await limiter.settle(r, 900, 0)  # used more than estimated
    r2 = await limiter.acquire([key], 100, 0)
    assert r2.headers()["x-ratelimit-remaining-tokens"] == "0"
    with pytest.raises(LimitExceeded) as info:
        await limiter.acquire([key], 1, 0)
    assert info.value.limit == "tokens"


async def test_tokens_are_settled_down_and_refunded_on_failure(limiter: Limiter) -> None:
    key = Scope("key:abc", tpm=1000)
    r = await limiter.acquire([key], 800, 0)
    await limiter.settle(r, 300, 0)
    r2 = await limiter.acquire([key], 700, 0)  # 700 left after settling down
    assert r2.headers()["x-ratelimit-remaining-tokens"] == "0"
    await limiter.settle(r2, 0, 0)  # the call failed: everything back
    r3 = await limiter.acquire([key], 0, 0)
    assert r3.headers()["x-ratelimit-remaining-tokens"] == "700"


async def test_settling_beyond_the_bucket_is_debt(limiter: Limiter, clock: FakeClock) -> None:
    key = Scope("key:abc", tpm=1000)
    r = await limiter.acquire([key], 500, 0)
    await limiter.settle(r, 1500, 0)  # 500 tokens of debt
    with pytest.raises(LimitExceeded) as info:
        await limiter.acquire([key], 0, 0)
    assert info.value.retry_after == 30.0  # 500 tokens at 1000/min
    clock.advance(30)
    r2 = await limiter.acquire([key], 0, 0)
    assert r2.headers()["x-ratelimit-remaining-tokens"] == "0"


async def test_settling_twice_changes_nothing(limiter: Limiter) -> None:
    key = Scope("key:abc", tpm=1000, daily_budget_micros=1000)
    r = await limiter.acquire([key], 500, 500)
    await limiter.settle(r, 200, 0)
    await limiter.settle(r, 200, 0)  # a second refund would show in tokens and budget
    assert r.settled
    r2 = await limiter.acquire([key], 0, 1000)
    assert r2.headers()["x-ratelimit-remaining-tokens"] == "800"
    with pytest.raises(BudgetExceeded):
        await limiter.acquire([key], 0, 0)


async def test_an_estimate_above_the_tpm_is_refused_for_good(limiter: Limiter) -> None:
    key = Scope("key:abc", tpm=1000)
    with pytest.raises(LimitExceeded) as info:
        await limiter.acquire([key], 1001, 0)
    assert info.value.retry_after is None
    assert "can never be admitted" in info.value.message
    assert "1001 tokens" in info.value.message
    assert (await limiter.acquire([key], 1000, 0)).headers()["x-ratelimit-remaining-tokens"] == "0"


async def test_big_limits_stay_exact(limiter: Limiter) -> None:
    key = Scope("key:abc", tpm=900_000_000, daily_budget_micros=10**15)
    r = await limiter.acquire([key], 899_999_999, 10**15 - 1)
    assert r.headers()["x-ratelimit-remaining-tokens"] == "1"
    await limiter.acquire([key], 1, 0)
    with pytest.raises(LimitExceeded):
        await limiter.acquire([key], 1, 0)
    await limiter.settle(r, 899_999_999, 10**15)
    with pytest.raises(BudgetExceeded):
        await limiter.acquire([Scope("key:abc", daily_budget_micros=10**15)], 0, 0)


# --- all scopes or none --------------------------------------------------------------------


async def test_a_refusal_by_one_scope_takes_nothing_from_the_others(limiter: Limiter) -> None:
    key = Scope("key:abc", rpm=10, tpm=1000, daily_budget_micros=10_000)
    project = Scope("project:p1", rpm=1)
    r = await limiter.acquire([key, project], 100, 100)
    for _ in range(3):
        with pytest.raises(LimitExceeded) as info:
            await limiter.acquire([key, project], 100, 100)
        assert info.value.scope == "project:p1"
    after = await limiter.acquire([key], 0, 0)
    assert after.headers()["x-ratelimit-remaining-requests"] == "8"  # r and this one only
    assert after.headers()["x-ratelimit-remaining-tokens"] == "900"
    await limiter.settle(r, 100, 9_900)  # the refusals reserved nothing: 100 left
    await limiter.acquire([key], 0, 100)
    with pytest.raises(BudgetExceeded) as budget:
        await limiter.acquire([key], 0, 0)
    assert budget.value.scope == "key:abc"


async def test_a_spent_budget_refuses_before_the_rate_limits(limiter: Limiter) -> None:
    key = Scope("key:abc", rpm=1, daily_budget_micros=0)
    with pytest.raises(BudgetExceeded):
        await limiter.acquire([key], 0, 0)
    assert await admitted(limiter, [Scope("key:abc", rpm=1)], 1) == 1


async def test_the_longest_wait_is_reported(limiter: Limiter) -> None:
    key = Scope("key:abc", rpm=60)  # refills a request in 1 s
    project = Scope("project:p1", tpm=600)  # 100 tokens in 10 s
    await limiter.acquire([key, project], 600, 0)
    await admitted(limiter, [key], 59)
    with pytest.raises(LimitExceeded) as info:
        await limiter.acquire([key, project], 100, 0)
    assert (info.value.scope, info.value.limit, info.value.retry_after) == (
        "project:p1",
        "tokens",
        10.0,
    )


# --- budgets -------------------------------------------------------------------------------


async def test_budgets_stop_spending_at_the_budget(limiter: Limiter) -> None:
    project = Scope("project:p1", daily_budget_micros=1_000_000)  # $1 a day
    spent = 0
    refused: BudgetExceeded | None = None
    for _ in range(50):
        try:
            r = await limiter.acquire([project], 0, 70_000)
        except BudgetExceeded as exc:
            refused = exc
            break
        await limiter.settle(r, 0, 70_000)
        spent += 70_000
    assert refused is not None, "the budget never stopped spending"
    err = refused
    assert spent == 1_050_000  # 15 requests: the one started below $1 finishes above it
    assert err.status == 402
    assert err.code == "insufficient_quota"
    assert err.limit == "daily_budget"
    assert err.retry_after == 12 * 3600  # until midnight UTC
    assert err.message == (
        "project p1: daily budget of $1.00 is reached; it renews at 2026-12-03T00:00:00Z"
    )


async def test_overshoot_is_bounded_by_the_requests_in_flight(limiter: Limiter) -> None:
    project = Scope("project:p1", daily_budget_micros=1_000)
    results = await asyncio.gather(
        *(limiter.acquire([project], 0, 300) for _ in range(20)), return_exceptions=True
    )
    held = [r for r in results if isinstance(r, Reservation)]
    assert len(held) == 4  # 0, 300, 600, 900 are below 1,000 when they ask
    assert all(isinstance(r, BudgetExceeded) for r in results if r not in held)
    for r in held:  # each costs what it said; 200 over the budget, less than one request
        await limiter.settle(r, 0, 300)
    with pytest.raises(BudgetExceeded):
        await limiter.acquire([project], 0, 1)


async def test_settling_below_the_estimate_frees_the_budget(limiter: Limiter) -> None:
    project = Scope("project:p1", monthly_budget_micros=1_500)
    r = await limiter.acquire([project], 0, 1_500)
    with pytest.raises(BudgetExceeded) as info:
        await limiter.acquire([project], 0, 1)
    assert info.value.limit == "monthly_budget"
    assert "monthly budget of $0.0015 is reached" in info.value.message
    await limiter.settle(r, 0, 0)  # the call failed: nothing spent
    await limiter.acquire([project], 0, 1)


async def test_budgets_renew_with_the_utc_day_and_month(limiter: Limiter, clock: FakeClock) -> None:
    clock.now = at("2026-12-31T23:59:59.999")
    project = Scope("project:p1", daily_budget_micros=100, monthly_budget_micros=150)
    r = await limiter.acquire([project], 0, 100)
    await limiter.settle(r, 0, 100)
    with pytest.raises(BudgetExceeded) as info:
        await limiter.acquire([project], 0, 1)
    assert info.value.limit == "daily_budget"
    assert info.value.retry_after == 0.001
    clock.advance(0.001)  # 2027-01-01: a new day and a new month
    r = await limiter.acquire([project], 0, 100)
    assert (r.day, r.month) == ("2027-01-01", "2027-01")
    await limiter.settle(r, 0, 100)
    clock.now = at("2027-01-02T00:00:00")
    r = await limiter.acquire([project], 0, 60)  # a new day; the month has 50 left
    await limiter.settle(r, 0, 60)
    clock.now = at("2027-01-03T00:00:00")
    with pytest.raises(BudgetExceeded) as info:
        await limiter.acquire([project], 0, 1)
    assert info.value.limit == "monthly_budget"
    assert info.value.retry_after == 29 * 86400  # until 2027-02-01


async def test_a_settle_after_midnight_counts_in_the_day_it_started(
    limiter: Limiter, clock: FakeClock
) -> None:
    clock.now = at("2026-12-02T23:59:59")
    project = Scope("project:p1", daily_budget_micros=100)
    r = await limiter.acquire([project], 0, 100)
    clock.advance(2)
    await limiter.settle(r, 0, 30)  # 30 spent on the 2nd; the 3rd untouched
    await limiter.acquire([project], 0, 100)
    with pytest.raises(BudgetExceeded):
        await limiter.acquire([project], 0, 0)


@pytest.mark.parametrize(
    ("moment", "day", "month"),
    [
        ("2024-02-29T23:59:59.999", "2024-02-29", "2024-02"),
        ("2024-03-01T00:00:00", "2024-03-01", "2024-03"),
        ("2023-02-28T12:00:00", "2023-02-28", "2023-02"),
        ("2000-02-29T00:00:00", "2000-02-29", "2000-02"),
        ("1999-12-31T23:59:59.999", "1999-12-31", "1999-12"),
        ("2100-03-01T00:00:00", "2100-03-01", "2100-03"),
        ("2026-12-02T12:00:00", "2026-12-02", "2026-12"),
    ],
)
async def test_periods_are_utc_calendar_dates(
    limiter: Limiter, clock: FakeClock, moment: str, day: str, month: str
) -> None:
    clock.now = at(moment)
    r = await limiter.acquire([Scope("key:abc", daily_budget_micros=1)], 0, 0)
    assert (r.day, r.month) == (day, month) == periods(round(clock.now * 1000))


# --- headers -------------------------------------------------------------------------------


async def test_headers_show_the_tightest_scope(limiter: Limiter) -> None:
    key = Scope("key:abc", rpm=60, tpm=1000)
    project = Scope("project:p1", rpm=10, tpm=100_000)
    r = await limiter.acquire([key, project], 100, 0)
    assert r.headers() == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "9",
        "x-ratelimit-reset-requests": "6s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "900",
        "x-ratelimit-reset-tokens": "6s",
    }


async def test_refusals_carry_the_headers(limiter: Limiter, clock: FakeClock) -> None:
    key = Scope("key:abc", rpm=2, tpm=90_000)
    await limiter.acquire([key], 30_000, 0)
    await limiter.acquire([key], 30_000, 0)
    clock.advance(0.5)
    with pytest.raises(LimitExceeded) as info:
        await limiter.acquire([key], 0, 0)
    assert info.value.headers == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "59.5s",
        "x-ratelimit-limit-tokens": "90000",
        "x-ratelimit-remaining-tokens": "30750",
        "x-ratelimit-reset-tokens": "39.5s",
    }
    assert info.value.retry_after == 29.5


async def test_no_limits_no_headers(limiter: Limiter) -> None:
    r = await limiter.acquire([Scope("key:abc", daily_budget_micros=5)], 10, 1)
    assert r.headers() == {}
    assert (await limiter.acquire([], 10, 1)).headers() == {}


def test_reset_is_formatted_like_go_durations() -> None:
    cases = {
        0: "0s",
        -5: "0s",
        1: "1ms",
        20: "20ms",
        999: "999ms",
        1000: "1s",
        1500: "1.5s",
        17_762: "17.762s",
        60_000: "1m0s",
        360_000: "6m0s",
        86_400: "1m26.4s",
        3_600_000: "1h0m0s",
        3_723_004: "1h2m3.004s",
    }
    assert {ms: format_duration(ms) for ms in cases} == cases


# --- arguments -----------------------------------------------------------------------------


def test_scopes_reject_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="rpm"):
        Scope("key:abc", rpm=0)
    with pytest.raises(ValueError, match="budget"):
        Scope("key:abc", daily_budget_micros=-1)
    with pytest.raises(ValueError):
        Scope("")


async def test_duplicate_scopes_and_negative_usage_are_refused(limiter: Limiter) -> None:
    with pytest.raises(ValueError, match="unique"):
        await limiter.acquire([Scope("key:abc", rpm=1), Scope("key:abc", rpm=2)], 0, 0)
    with pytest.raises(ValueError):
        await limiter.acquire([Scope("key:abc")], -1, 0)


async def test_two_limiters_on_one_store_share_the_limit(
    make_limiter: Callable[[], Limiter],
) -> None:
    a, b = make_limiter(), make_limiter()
    key = Scope("key:abc", rpm=4)
    assert await admitted(a, [key], 3) == 3
    assert await admitted(b, [key], 3) == 1


async def test_a_refund_to_forgotten_full_buckets_still_settles_the_budget(
    limiter: Limiter, clock: FakeClock
) -> None:
    """A long call: its buckets refill and are forgotten while it runs (the memory backend
    drops full buckets once a minute); settling with fewer tokens than reserved must still
    move its cost from reserved to spent."""
    key = Scope("key:long", tpm=1_000, daily_budget_micros=10)
    long_call = await limiter.acquire([key], 100, 10)
    clock.advance(120)
    await limiter.acquire([Scope("key:other", rpm=1)], 0, 0)  # time for a sweep
    await limiter.settle(long_call, 40, 7)
    await limiter.settle(await limiter.acquire([key], 10, 2), 10, 2)  # 7 spent + 2 < 10
    with pytest.raises(BudgetExceeded):  # 9 spent + 1 reserved
        await limiter.settle(await limiter.acquire([key], 10, 1), 10, 1)
        await limiter.acquire([key], 10, 1)
