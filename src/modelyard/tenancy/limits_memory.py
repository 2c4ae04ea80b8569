"""The in-memory limiter, for a single node: ``MemoryLimiter`` (the contract, the refusals and
the headers it shares with the Redis limiter are in ``limits``).

It keeps its counters in plain dicts: nothing in ``acquire`` awaits, so one event loop runs each
acquisition whole. What does not change between requests is resolved once per tuple of scopes
(a principal's) into a ``_Plan``: its token buckets (``_Bucket``, exact integer units, refilled
continuously) and, per budgeted scope, the spend of the UTC day (``_Spend``) with the room it
has. Across processes use ``RedisLimiter`` (``limits_redis``), through ``limiter_from_url``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelyard.core.errors import ModelyardError
from modelyard.tenancy.limits import (
    DAY_MS,
    NO_BUCKET,
    UNIT,
    Failure,
    Reservation,
    Scope,
    Tightest,
    check_arguments,
    check_scope,
    periods_of_day,
    refusal,
)

SWEEP_EVERY_MS = 60_000


class _Bucket:
    """One token bucket of one scope: its level in units at ``at`` (ms), refilled at ``limit``
    units per ms up to ``cap`` (``limit * UNIT``). A bucket is made full; its limit is the
    one of the newest plan made for its scope (a reload may change it: the time since the
    last refill then refills at the new limit)."""

    __slots__ = ("at", "cap", "level", "limit")

    def __init__(self, limit: int, now_ms: int) -> None:
        self.limit, self.cap = limit, limit * UNIT
        self.level, self.at = self.cap, now_ms

    def limit_to(self, limit: int) -> None:
        """Refill at ``limit`` from now on, holding at most its cap from now."""
        self.limit, self.cap = limit, limit * UNIT
        self.level = min(self.level, self.cap)

    def level_at(self, now_ms: int) -> int:
        """The level refilled to ``now_ms``, as the bucket now holds it."""
        _refill((self,), now_ms)
        return self.level

    def correct(self, extra: int, now_ms: int) -> None:
        """Settle's correction: ``extra`` tokens more than reserved were used (a debt), or
        fewer (a refund, when negative). A refund needs no refill (nor ``now_ms``): capped,
        refund then refill comes to the same level as refill then refund, now and at every
        later refill; a debt does (the level may go below 0: the scope waits until it has paid
        it back)."""
        if extra > 0:
            _refill((self,), now_ms)
        level = self.level - extra * UNIT
        self.level = self.cap if level > self.cap else level

    def full(self, now_ms: int) -> bool:
        """Whether it is full at ``now_ms``, so that forgetting it changes nothing."""
        return self.level + max(0, now_ms - self.at) * self.limit >= self.cap


def _refill(buckets: tuple[_Bucket, ...], now_ms: int) -> None:
    """Every bucket brought to ``now_ms``: ``limit`` units more per ms since ``at``, at most
    full; again at the same ms changes nothing."""
    for bucket in buckets:
        if now_ms > bucket.at:
            bucket.level = min(bucket.level + (now_ms - bucket.at) * bucket.limit, bucket.cap)
            bucket.at = now_ms


def _take(buckets: tuple[_Bucket, ...], units: int, now_ms: int) -> tuple[int, int, int] | None:
    """Refill every bucket (as ``_refill``) and take ``units`` from each; the tightest bucket
    after it (ranked as ``limits._tightest`` ranks), or None when one holds too few: then nothing
    is taken (the buckets before it get theirs back).

    No clamping is needed: an admitted request bucket held at least one request, so it keeps
    between 0 and limit - 1 whole requests; a token bucket between 0 and limit tokens."""
    best = NO_BUCKET
    for bucket in buckets:
        level = bucket.level
        if now_ms > bucket.at:
            level = min(level + (now_ms - bucket.at) * bucket.limit, bucket.cap)
            bucket.at = now_ms
        if level < units:  # a token bucket holds at most its limit: a bigger estimate never fits
            bucket.level = level
            for earlier in buckets:
                if earlier is bucket:
                    return None
                earlier.level += units
        bucket.level = level = level - units
        taken = (level // UNIT, bucket.limit, level)
        if best is NO_BUCKET or taken < best:
            best = taken
    return best


class _Spend:
    """One scope's spend in one UTC day: micro-dollars spent plus reserved, the one sum a
    budget is checked against (the ledger, not this, records what was spent). A month's is
    the sum of its days'."""

    __slots__ = ("committed",)

    def __init__(self) -> None:
        self.committed = 0


class _Plan:
    """What ``acquire`` needs of one tuple of scopes, resolved once rather than on every
    request: the buckets its scopes limit (request buckets, token buckets, in scope order) and
    the spend in the UTC day ``days`` of each scope with a budget, with the room it has that
    day: the daily budget, or what the monthly one leaves after the month's earlier days,
    whichever is less. So a request moves one spend per scope, whatever its budgets. Valid for
    that day, and until the next sweep (which may drop its buckets) or the next change to an
    earlier day's spend (a late settle): ``generation``. A reservation keeps its plan to
    settle through."""

    __slots__ = (
        "budgets",
        "day",
        "days",
        "generation",
        "month",
        "requests",
        "scopes",
        "spends",
        "tokens",
    )

    def __init__(
        self,
        scopes: tuple[Scope, ...],
        days: int,
        generation: int,
        buckets: tuple[tuple[_Bucket, ...], tuple[_Bucket, ...]],
        budgets: tuple[tuple[_Spend, int], ...],
    ) -> None:
        self.scopes, self.days, self.generation = scopes, days, generation
        self.requests, self.tokens = buckets
        self.budgets = budgets
        self.spends = tuple(spend for spend, _ in budgets)  # what taking and settling move
        self.day, self.month = periods_of_day(days)

    def take(self, tokens: int, cost_micros: int, now_ms: int) -> Tightest | None:
        """Take one request, ``tokens`` and ``cost_micros`` from every scope at ``now_ms``;
        the tightest buckets after it. None when a scope has spent its room (spent + reserved
        has reached it) or a bucket holds too few: then nothing is taken."""
        for spend, room in self.budgets:
            if spend.committed >= room:
                return None
        requests = _take(self.requests, UNIT, now_ms)
        if requests is None:
            return None
        tokens_taken = _take(self.tokens, tokens * UNIT, now_ms)
        if tokens_taken is None:
            for bucket in self.requests:
                bucket.level += UNIT
            return None
        for spend in self.spends:
            spend.committed += cost_micros
        return (*requests, *tokens_taken)


@dataclass(slots=True)
class _Held(Reservation):
    """A memory limiter's reservation: with the plan it was taken through, to settle by."""

    plan: _Plan | None = None


@functools.lru_cache(maxsize=4)
def _earlier_days(days: int) -> tuple[str, ...]:
    """The UTC days of the month of ``days`` (since the epoch) before it, as ``_spend`` keys
    them (``2026-12-01``)."""
    day = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=days)).date()
    return tuple(day.replace(day=d).isoformat() for d in range(1, day.day))


class MemoryLimiter:
    """Counters in this process: the limiter for a single node.

    ``clock`` returns seconds since the epoch (``time.time``); tests inject their own. Full
    buckets and the spends of past months are dropped once a minute, so memory follows
    the scopes in use, not every scope ever seen.

    Every admitted request goes through ``acquire`` and ``settle``, so what does not change
    between requests is resolved once per tuple of scopes (a principal's, built once per key):
    its ``_Plan``, kept until the day turns, the minute's sweep or a settle into an earlier
    day. Acquiring refills and checks the plan's buckets and spends and takes from them;
    settling corrects them. Refusals take the general ``check_scope`` and ``refusal``. The
    spends are kept by UTC day (a month's is the sum of its days'), so each request moves one
    per scope, and the memory a budgeted scope takes grows with the days of the month.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._requests: dict[str, _Bucket] = {}  # by scope name
        self._tokens: dict[str, _Bucket] = {}
        self._spend: dict[tuple[str, str], _Spend] = {}  # (UTC day, scope name)
        # Plans by the id of their scopes tuple; the plan holds the tuple, so the id stays its.
        self._plans: dict[int, _Plan] = {}
        # Counts what retires every plan made before: sweeps, a new day, a late settle.
        self._generation = 0
        self._day = ""  # the day of the plans of this generation
        self._swept_ms = 0

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)

    async def acquire(self, scopes: Sequence[Scope], tokens: int, cost_micros: int) -> Reservation:
        return self.acquire_now(scopes, tokens, cost_micros)

    async def settle(self, reservation: Reservation, tokens: int, cost_micros: int) -> None:
        self.settle_now(reservation, tokens, cost_micros)

    def acquire_now(self, scopes: Sequence[Scope], tokens: int, cost_micros: int) -> Reservation:
        """``acquire`` without a coroutine: nothing here waits (the meter calls this one)."""
        if tokens < 0 or cost_micros < 0:
            raise ValueError("tokens and cost must not be negative")
        now = round(self._clock() * 1000)
        plan = self._plans.get(id(scopes))
        if plan is None or plan.scopes is not scopes or plan.days != now // DAY_MS:
            plan = self._plan(scopes, now)
        tightest = plan.take(tokens, cost_micros, now)
        if tightest is None:
            refused = self._refusal(plan.scopes, tokens, now)
            if refused is not None:
                raise refused
            # The plan's buckets have other limits now, or are no longer held: a plan made
            # since for scopes of the same names (a reload's) changed them. Made afresh from
            # these scopes, the plan and the refusal see the same limits.
            self._retire_plans()
            return self.acquire_now(scopes, tokens, cost_micros)
        if now - self._swept_ms >= SWEEP_EVERY_MS:
            self._sweep(now)
        return _Held(plan.scopes, tokens, cost_micros, plan.day, plan.month, tightest, plan=plan)

    def _plan(self, scopes: Sequence[Scope], now_ms: int) -> _Plan:
        """The plan of ``scopes`` today, kept for the next requests when they come as a tuple
        (a principal's scopes). A scope that has lost a limit forgets its bucket: should the
        limit come back, the bucket starts full."""
        chosen = check_arguments(scopes, 0, 0)
        days = now_ms // DAY_MS
        day = periods_of_day(days)[0]
        if day != self._day:  # plans of another day: their settles move that day's spends
            self._day = day
            self._retire_plans()
        requests: list[_Bucket] = []
        tokens: list[_Bucket] = []
        budgets: list[tuple[_Spend, int]] = []
        for scope in chosen:
            name = scope.name
            for limit, buckets, limited in (
                (scope.rpm, self._requests, requests),
                (scope.tpm, self._tokens, tokens),
            ):
                bucket = buckets.get(name)
                if limit is None:
                    buckets.pop(name, None)
                elif bucket is None:
                    limited.append(buckets.setdefault(name, _Bucket(limit, now_ms)))
                else:
                    if bucket.limit != limit:
                        bucket.limit_to(limit)
                    limited.append(bucket)
            room, monthly = scope.daily_budget_micros, scope.monthly_budget_micros
            if monthly is not None:
                left = monthly - self._month_before(name, days)
                room = left if room is None or left < room else room
            if room is not None:
                budgets.append((self._spend_of((day, name)), room))
        kinds = (tuple(requests), tuple(tokens))
        plan = _Plan(chosen, days, self._generation, kinds, tuple(budgets))
        if chosen is scopes:
            self._plans[id(scopes)] = plan
        return plan

    def _retire_plans(self) -> None:
        """No plan made before is used again: acquiring makes new ones, settling through one
        looks its counters up by name."""
        self._generation += 1
        self._plans.clear()

    def _month_before(self, name: str, days: int) -> int:
        """What the scope ``name`` committed in the days of the month before ``days``."""
        return sum(_committed(self._spend.get((day, name))) for day in _earlier_days(days))

    def _spend_of(self, key: tuple[str, str]) -> _Spend:
        spend = self._spend.get(key)
        if spend is None:
            spend = self._spend[key] = _Spend()
        return spend

    def _refusal(
        self, scopes: tuple[Scope, ...], tokens: int, now_ms: int
    ) -> ModelyardError | None:
        """The refusal made from every scope's limits, levels and spends at ``now_ms`` (a plan
        checked them and took nothing); None if no limit refuses (a bucket not held is full)."""
        days = now_ms // DAY_MS
        today = periods_of_day(days)[0]
        levels: list[tuple[int, int]] = []
        failures: list[Failure] = []
        for i, scope in enumerate(scopes):
            name = scope.name
            level = (
                _level(self._requests.get(name), scope.rpm, now_ms),
                _level(self._tokens.get(name), scope.tpm, now_ms),
            )
            levels.append(level)
            day = _committed(self._spend.get((today, name)))
            snapshot = (*level, day, self._month_before(name, days) + day)
            failures.extend(check_scope(i, scope, snapshot, tokens))
        return refusal(scopes, failures, levels, tokens, now_ms) if failures else None

    def settle_now(self, reservation: Reservation, tokens: int, cost_micros: int) -> None:
        if reservation.settled or not reservation.enforced:
            return
        if tokens < 0 or cost_micros < 0:
            raise ValueError("tokens and cost must not be negative")
        reservation.settled = True
        plan = reservation.plan if isinstance(reservation, _Held) else None
        if plan is None or plan.generation != self._generation:
            # A sweep since may have dropped its buckets or spends: look them up by name.
            self._settle_by_name(reservation, tokens, cost_micros)
            return
        extra = tokens - reservation.tokens
        if extra:
            now = self._now_ms() if extra > 0 else 0
            for bucket in plan.tokens:
                bucket.correct(extra, now)
        correction = cost_micros - reservation.cost_micros
        for spend in plan.spends:
            spend.committed += correction

    def _settle_by_name(self, reservation: Reservation, tokens: int, cost_micros: int) -> None:
        """``settle_now`` through the limiter's dicts: the token buckets as they are now (one
        dropped while full is made again for a debt; a refund would leave it full), the spends
        of the day the reservation was taken in. Settling into another day than the plans'
        may change what their month has left: they are retired."""
        extra = tokens - reservation.tokens
        correction = cost_micros - reservation.cost_micros
        for scope in reservation.scopes:
            name = scope.name
            if scope.tpm is not None and extra:
                bucket = self._tokens.get(name)
                if bucket is None and extra > 0:
                    bucket = self._tokens[name] = _Bucket(scope.tpm, self._now_ms())
                if bucket is not None:
                    bucket.correct(extra, self._now_ms() if extra > 0 else 0)
            if scope.daily_budget_micros is not None or scope.monthly_budget_micros is not None:
                self._spend_of((reservation.day, name)).committed += correction
        if reservation.day != self._day:
            self._retire_plans()

    def _sweep(self, now_ms: int) -> None:
        """Drop the buckets that are full and the spends of past months (no check reads them;
        a late settle into one makes it again, to be dropped at the next sweep). Every plan
        made before may hold them, so none is used again."""
        self._swept_ms = now_ms
        self._retire_plans()
        for buckets in (self._requests, self._tokens):
            full = [name for name, bucket in buckets.items() if bucket.full(now_ms)]
            for name in full:
                del buckets[name]
        month = periods_of_day(now_ms // DAY_MS)[1]
        stale = [key for key in self._spend if not key[0].startswith(month)]
        for key in stale:
            del self._spend[key]

    async def aclose(self) -> None:
        return None


def _level(bucket: _Bucket | None, limit: int | None, now_ms: int) -> int:
    """A scope's bucket level for a refusal: 0 without that limit, full when not held."""
    if limit is None:
        return 0
    return limit * UNIT if bucket is None else bucket.level_at(now_ms)


def _committed(spend: _Spend | None) -> int:
    return spend.committed if spend is not None else 0
