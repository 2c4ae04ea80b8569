"""Rate limits and budgets per key and per project: the shared types and the in-memory limiter.

A ``Scope`` is one limited subject (``key:abc123``, ``project:p1``) with its limits. Before a
call, ``Limiter.acquire`` takes one request, the estimated tokens and the estimated cost from
every scope at once, or from none of them; after the call, ``Limiter.settle`` replaces the
estimate with the actual usage (zero when the call failed).

Requests and tokens per minute are token buckets with continuous refill: capacity is the
per-minute limit and it refills at limit/60 per second, so "N per minute" admits a burst of N
and then N/60 per second. The arithmetic is exact in integers: a bucket holds *units*, one token
(or request) being ``UNIT`` units, and refills ``limit`` units per millisecond, so a full bucket
(``limit * UNIT`` units) is one minute of refill. Settling may take more than is left: the level
goes negative (debt) and the scope waits until it has paid it back.

Budgets count micro-dollars per UTC day and per UTC month: spent plus reserved. A request is
refused once spent + reserved has reached the budget, so the spend can pass the budget only by
what the requests already in flight turn out to cost.

Refusals raise ``LimitExceeded`` (429) or ``BudgetExceeded`` (402); both carry ``retry_after``
and the ``x-ratelimit-*`` headers of the tightest scope, as the successful ``Reservation`` does.

The memory backend keeps its counters in plain dicts: nothing in ``acquire`` awaits, so one
event loop runs each acquisition whole. Across processes use ``RedisLimiter``
(``limits_redis``), through ``limiter_from_url``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from modelyard.core.errors import BudgetExceeded, LimitExceeded, ModelyardError
from modelyard.core.money import MICROS_PER_DOLLAR

UNIT = 60_000  # bucket units per token; refill is `limit` units per ms, so a minute fills it
DAY_MS = 86_400_000
SWEEP_EVERY_MS = 60_000

# Limit kinds, in the order they are checked and reported.
REQUESTS, TOKENS, DAILY, MONTHLY = "requests", "tokens", "daily_budget", "monthly_budget"
KINDS = (REQUESTS, TOKENS, DAILY, MONTHLY)
NEVER = -1  # wait_ms of a request that can never be admitted (estimate above the TPM)


@dataclass(frozen=True, slots=True)
class Scope:
    """One limited subject and its limits; ``None`` means unlimited."""

    name: str
    rpm: int | None = None
    tpm: int | None = None
    daily_budget_micros: int | None = None
    monthly_budget_micros: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a scope needs a name")
        for what, value in (("rpm", self.rpm), ("tpm", self.tpm)):
            if value is not None and value < 1:
                raise ValueError(f"scope {self.name}: {what} must be at least 1, not {value}")
        for what, value in (
            ("daily_budget_micros", self.daily_budget_micros),
            ("monthly_budget_micros", self.monthly_budget_micros),
        ):
            if value is not None and value < 0:
                raise ValueError(f"scope {self.name}: {what} must not be negative")

    @property
    def label(self) -> str:
        """``key:abc123`` as people read it: ``key abc123``."""
        return self.name.replace(":", " ", 1)


@dataclass(frozen=True, slots=True)
class Window:
    """One rate limit's state for headers: the limit, what is left, ms until it is full again."""

    limit: int
    remaining: int
    reset_ms: int


@dataclass(frozen=True, slots=True)
class RateState:
    """The tightest scope's request and token windows (either absent when nothing limits it)."""

    requests: Window | None = None
    tokens: Window | None = None

    def headers(self) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers, named as OpenAI names them."""
        out: dict[str, str] = {}
        for suffix, window in (("requests", self.requests), ("tokens", self.tokens)):
            if window is not None:
                out[f"x-ratelimit-limit-{suffix}"] = str(window.limit)
                out[f"x-ratelimit-remaining-{suffix}"] = str(window.remaining)
                out[f"x-ratelimit-reset-{suffix}"] = format_duration(window.reset_ms)
        return out


@dataclass(slots=True)
class Reservation:
    """What one ``acquire`` took, for ``settle``; and the rate state for response headers.

    ``enforced`` is false when a shared store was unreachable and the limiter failed open: nothing
    was taken, and settling does nothing.
    """

    scopes: tuple[Scope, ...]
    tokens: int
    cost_micros: int
    day: str
    month: str
    state: RateState = field(default_factory=RateState)
    enforced: bool = True
    settled: bool = False

    def headers(self) -> dict[str, str]:
        return self.state.headers()


class Limiter(Protocol):
    async def acquire(self, scopes: Sequence[Scope], tokens: int, cost_micros: int) -> Reservation:
        """Take one request, ``tokens`` and ``cost_micros`` from every scope, or from none.

        Raises ``LimitExceeded`` (429) or ``BudgetExceeded`` (402).
        """
        ...

    async def settle(self, reservation: Reservation, tokens: int, cost_micros: int) -> None:
        """Replace the reservation's estimate by the actual usage (0, 0 when the call failed).

        Settling a reservation twice does nothing the second time.
        """
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Failure:
    """One limit that refused: the scope's index, the limit kind, ms to wait (``NEVER``)."""

    index: int
    kind: str
    wait_ms: int


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def format_duration(ms: int) -> str:
    """A duration as OpenAI's reset headers write it (Go's style): ``20ms``, ``1.5s``, ``6m0s``."""
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    text = f"{seconds}" + (f".{millis:03d}".rstrip("0") if millis else "") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def periods(now_ms: int) -> tuple[str, str]:
    """The UTC day (``2026-12-02``) and month (``2026-12``) of a time in ms since the epoch."""
    return _periods_of_day(now_ms // DAY_MS)


@functools.lru_cache(maxsize=4)
def _periods_of_day(days: int) -> tuple[str, str]:
    day = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=days)).date()
    return day.isoformat(), day.isoformat()[:7]


def ms_until_period_end(now_ms: int, kind: str) -> int:
    """Milliseconds until the UTC day (``DAILY``) or month (``MONTHLY``) of ``now_ms`` ends."""
    days = now_ms // DAY_MS
    if kind == DAILY:
        return (days + 1) * DAY_MS - now_ms
    day = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=days)).date()
    first = day.replace(day=1, month=day.month % 12 + 1, year=day.year + day.month // 12)
    epoch_days = (first - datetime(1970, 1, 1, tzinfo=UTC).date()).days
    return epoch_days * DAY_MS - now_ms


def window(limit: int, level: int) -> Window:
    """A bucket's header state from its level in units (negative when in debt)."""
    cap = limit * UNIT
    return Window(
        limit=limit,
        remaining=max(0, min(limit, level // UNIT)),
        reset_ms=max(0, ceil_div(cap - level, limit)),
    )


def rate_state(scopes: Sequence[Scope], levels: Sequence[tuple[int, int]]) -> RateState:
    """The tightest windows over all scopes, from each scope's (rpm level, tpm level).

    Runs on every admitted request, so it compares plain tuples and builds only the two
    windows it returns."""
    requests: tuple[int, int, int] | None = None  # (remaining, limit, level) of the tightest
    tokens: tuple[int, int, int] | None = None
    for scope, (rpm_level, tpm_level) in zip(scopes, levels, strict=True):
        if scope.rpm:
            candidate = (max(0, min(scope.rpm, rpm_level // UNIT)), scope.rpm, rpm_level)
            if requests is None or _tighter(candidate, requests):
                requests = candidate
        if scope.tpm:
            candidate = (max(0, min(scope.tpm, tpm_level // UNIT)), scope.tpm, tpm_level)
            if tokens is None or _tighter(candidate, tokens):
                tokens = candidate
    return RateState(
        requests=window(requests[1], requests[2]) if requests else None,
        tokens=window(tokens[1], tokens[2]) if tokens else None,
    )


def _tighter(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    """Fewer remaining, then the lower limit, then the longer wait to refill."""
    if a[:2] != b[:2]:
        return a[:2] < b[:2]
    return _reset_ms(a[1], a[2]) > _reset_ms(b[1], b[2])


def _reset_ms(limit: int, level: int) -> int:
    return max(0, ceil_div(limit * UNIT - level, limit))


def check_scope(
    index: int, scope: Scope, snapshot: tuple[int, int, int, int], tokens: int
) -> list[Failure]:
    """Every limit of one scope that refuses ``tokens`` now.

    ``snapshot`` is (rpm level, tpm level, day committed, month committed): levels in units after
    refill, committed = spent + reserved micro-dollars. Budget waits are filled in by the caller.
    """
    rpm_level, tpm_level, day_committed, month_committed = snapshot
    failures: list[Failure] = []
    if scope.rpm is not None and rpm_level < UNIT:
        failures.append(Failure(index, REQUESTS, ceil_div(UNIT - rpm_level, scope.rpm)))
    if scope.tpm is not None:
        if tokens > scope.tpm:
            failures.append(Failure(index, TOKENS, NEVER))
        elif tpm_level < tokens * UNIT:
            failures.append(Failure(index, TOKENS, ceil_div(tokens * UNIT - tpm_level, scope.tpm)))
    if scope.daily_budget_micros is not None and day_committed >= scope.daily_budget_micros:
        failures.append(Failure(index, DAILY, 0))
    if scope.monthly_budget_micros is not None and month_committed >= scope.monthly_budget_micros:
        failures.append(Failure(index, MONTHLY, 0))
    return failures


def _dollars(micros: int) -> str:
    """``$5.00``, or every digit needed: ``$0.0015``."""
    whole, frac = divmod(micros, MICROS_PER_DOLLAR)
    digits = f"{frac:06d}".rstrip("0")
    return f"${whole}.{digits.ljust(2, '0')}"


def _budget_error(
    scope: Scope, failure: Failure, now_ms: int, headers: dict[str, str]
) -> BudgetExceeded:
    wait = ms_until_period_end(now_ms, failure.kind)
    if failure.kind == DAILY:
        what, budget = "daily", scope.daily_budget_micros
    else:
        what, budget = "monthly", scope.monthly_budget_micros
    resets = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=now_ms + wait)
    return BudgetExceeded(
        f"{scope.label}: {what} budget of {_dollars(budget or 0)} is reached; "
        f"it renews at {resets:%Y-%m-%dT%H:%M:%SZ}",
        scope=scope.name,
        limit=failure.kind,
        retry_after=wait / 1000,
        headers=headers,
    )


def _rate_error(
    scope: Scope, failure: Failure, tokens: int, headers: dict[str, str]
) -> LimitExceeded:
    if failure.wait_ms == NEVER:
        return LimitExceeded(
            f"{scope.label}: this request needs about {tokens} tokens but the limit is "
            f"{scope.tpm} tokens per minute, so it can never be admitted; "
            "lower max_tokens or shorten the input",
            scope=scope.name,
            limit=TOKENS,
            retry_after=None,
            headers=headers,
        )
    limit = scope.rpm if failure.kind == REQUESTS else scope.tpm
    wait_s = max(1, ceil_div(failure.wait_ms, 1000))
    return LimitExceeded(
        f"{scope.label}: {limit} {failure.kind} per minute reached; "
        f"retry in {format_duration(wait_s * 1000)}",
        scope=scope.name,
        limit=failure.kind,
        retry_after=failure.wait_ms / 1000,
        headers=headers,
    )


def refusal(
    scopes: Sequence[Scope],
    failures: Sequence[Failure],
    state: RateState,
    tokens: int,
    now_ms: int,
) -> ModelyardError:
    """The one error to raise for these failures.

    A spent budget wins (it lasts longest and is not cured by waiting seconds); then a request
    that can never fit; then the rate limit with the longest wait, since retrying any sooner
    would be refused again.
    """
    headers = state.headers()
    budgets = [f for f in failures if f.kind in (DAILY, MONTHLY)]
    if budgets:
        worst = max(budgets, key=lambda f: ms_until_period_end(now_ms, f.kind))
        return _budget_error(scopes[worst.index], worst, now_ms, headers)
    never = [f for f in failures if f.wait_ms == NEVER]
    worst = never[0] if never else max(failures, key=lambda f: f.wait_ms)
    return _rate_error(scopes[worst.index], worst, tokens, headers)


def check_arguments(scopes: Sequence[Scope], tokens: int, cost_micros: int) -> tuple[Scope, ...]:
    if tokens < 0 or cost_micros < 0:
        raise ValueError("tokens and cost must not be negative")
    names = [s.name for s in scopes]
    if len(set(names)) != len(names):
        raise ValueError(f"scope names must be unique: {names}")
    return tuple(scopes)


@dataclass(slots=True)
class _Bucket:
    limit: int
    level: int
    at_ms: int

    def refill(self, limit: int, now_ms: int) -> int:
        """The level now, with the current limit (a reload may have changed it)."""
        self.level = min(limit * UNIT, self.level + max(0, now_ms - self.at_ms) * limit)
        self.limit, self.at_ms = limit, max(self.at_ms, now_ms)
        return self.level


@dataclass(slots=True)
class _Spend:
    spent: int = 0
    reserved: int = 0


class MemoryLimiter:
    """Counters in this process: the limiter for a single node.

    ``clock`` returns seconds since the epoch (``time.time``); tests inject their own. Full
    buckets and past periods with nothing reserved are dropped once a minute, so memory follows
    the scopes in use, not every scope ever seen.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._spend: dict[tuple[str, str], _Spend] = {}  # (period key, scope name)
        self._swept_ms = 0

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)

    def _spend_of(self, key: tuple[str, str]) -> _Spend:
        spend = self._spend.get(key)
        if spend is None:
            spend = self._spend[key] = _Spend()
        return spend

    def _take(self, kind: str, name: str, limit: int, units: int, now_ms: int) -> int:
        """Move a bucket's level by ``-units`` (a refund when negative); return the new level."""
        bucket = self._buckets.get((kind, name))
        if bucket is None:
            if units <= 0:
                return limit * UNIT  # a refund to a full bucket: it stays full
            bucket = self._buckets[(kind, name)] = _Bucket(limit, limit * UNIT, now_ms)
        bucket.refill(limit, now_ms)
        bucket.level = min(limit * UNIT, bucket.level - units)
        return bucket.level

    def _snapshot(
        self, scope: Scope, keys: tuple[str, str], now_ms: int
    ) -> tuple[int, int, int, int]:
        """(rpm level, tpm level, day committed, month committed) of one scope, refilled."""
        name, buckets, spend = scope.name, self._buckets, self._spend
        rpm = tpm = day = month = 0
        if scope.rpm is not None:
            bucket = buckets.get(("rpm", name))
            rpm = scope.rpm * UNIT if bucket is None else bucket.refill(scope.rpm, now_ms)
        if scope.tpm is not None:
            bucket = buckets.get(("tpm", name))
            tpm = scope.tpm * UNIT if bucket is None else bucket.refill(scope.tpm, now_ms)
        if scope.daily_budget_micros is not None and (d := spend.get((keys[0], name))):
            day = d.spent + d.reserved
        if scope.monthly_budget_micros is not None and (m := spend.get((keys[1], name))):
            month = m.spent + m.reserved
        return rpm, tpm, day, month

    async def acquire(self, scopes: Sequence[Scope], tokens: int, cost_micros: int) -> Reservation:
        chosen = check_arguments(scopes, tokens, cost_micros)
        now = self._now_ms()
        day, month = periods(now)
        keys = (f"day:{day}", f"month:{month}")
        snapshots = [self._snapshot(s, keys, now) for s in chosen]
        failures = [
            f for i, s in enumerate(chosen) for f in check_scope(i, s, snapshots[i], tokens)
        ]
        if failures:
            state = rate_state(chosen, [(sn[0], sn[1]) for sn in snapshots])
            raise refusal(chosen, failures, state, tokens, now)
        levels = [self._apply(s, keys, (tokens, cost_micros), now) for s in chosen]
        self._maybe_sweep(now)
        return Reservation(chosen, tokens, cost_micros, day, month, rate_state(chosen, levels))

    def _apply(
        self, scope: Scope, keys: tuple[str, str], usage: tuple[int, int], now_ms: int
    ) -> tuple[int, int]:
        tokens, cost = usage
        rpm = tpm = 0
        if scope.rpm is not None:
            rpm = self._take("rpm", scope.name, scope.rpm, UNIT, now_ms)
        if scope.tpm is not None:
            tpm = self._take("tpm", scope.name, scope.tpm, tokens * UNIT, now_ms)
        if scope.daily_budget_micros is not None:
            self._spend_of((keys[0], scope.name)).reserved += cost
        if scope.monthly_budget_micros is not None:
            self._spend_of((keys[1], scope.name)).reserved += cost
        return rpm, tpm

    async def settle(self, reservation: Reservation, tokens: int, cost_micros: int) -> None:
        if reservation.settled or not reservation.enforced:
            return
        if tokens < 0 or cost_micros < 0:
            raise ValueError("tokens and cost must not be negative")
        reservation.settled = True
        now = self._now_ms()
        extra = tokens - reservation.tokens
        for scope in reservation.scopes:
            if scope.tpm is not None and extra:
                self._take("tpm", scope.name, scope.tpm, extra * UNIT, now)
            for period, budget in (
                (f"day:{reservation.day}", scope.daily_budget_micros),
                (f"month:{reservation.month}", scope.monthly_budget_micros),
            ):
                if budget is not None:
                    spend = self._spend_of((period, scope.name))
                    spend.reserved -= reservation.cost_micros
                    spend.spent += cost_micros

    def _maybe_sweep(self, now_ms: int) -> None:
        if now_ms - self._swept_ms < SWEEP_EVERY_MS:
            return
        self._swept_ms = now_ms
        full = [k for k, b in self._buckets.items() if b.refill(b.limit, now_ms) >= b.limit * UNIT]
        for key in full:
            del self._buckets[key]
        day, month = periods(now_ms)
        current = {f"day:{day}", f"month:{month}"}
        stale = [k for k, s in self._spend.items() if k[0] not in current and s.reserved <= 0]
        for key in stale:
            del self._spend[key]

    async def aclose(self) -> None:
        return None


def limiter_from_url(redis_url: str | None, *, fail_open: bool = True) -> Limiter:
    """A ``RedisLimiter`` shared by every replica when ``redis_url`` is set, else memory."""
    if not redis_url:
        return MemoryLimiter()
    from modelyard.tenancy.limits_redis import RedisLimiter

    return RedisLimiter(redis_url, fail_open=fail_open)
