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
import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn, Protocol

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


# The ``x-ratelimit-*`` headers, named as OpenAI names them.
LIMIT_REQUESTS, REMAINING_REQUESTS, RESET_REQUESTS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
)
LIMIT_TOKENS, REMAINING_TOKENS, RESET_TOKENS = (
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
)
# The same names as the response sends them (ASGI's byte pairs).
_RAW_REQUESTS = (LIMIT_REQUESTS.encode(), REMAINING_REQUESTS.encode(), RESET_REQUESTS.encode())
_RAW_TOKENS = (LIMIT_TOKENS.encode(), REMAINING_TOKENS.encode(), RESET_TOKENS.encode())
# A response header as the ASGI server takes it: (lowercase name, value).
RawHeader = tuple[bytes, bytes]


# The tightest request and token buckets: (remaining, limit, level in units) of each, a limit
# of 0 when no scope has that limit. What the response headers are made from.
Tightest = tuple[int, int, int, int, int, int]


@dataclass(slots=True)
class Reservation:
    """What one ``acquire`` took, for ``settle``; and the tightest buckets after it, for the
    response headers (None when nothing was taken).

    ``enforced`` is false when a shared store was unreachable and the limiter failed open: nothing
    was taken, and settling does nothing.
    """

    scopes: tuple[Scope, ...]
    tokens: int
    cost_micros: int
    day: str
    month: str
    tightest: Tightest | None = None
    enforced: bool = True
    settled: bool = False

    def headers(self) -> dict[str, str]:
        return _headers_of(self.tightest) if self.tightest is not None else {}

    def raw_headers(self) -> list[RawHeader]:
        """``headers`` as the response sends them: made straight as byte pairs (a new list,
        the caller's to extend), since every limited request sends them."""
        return _pairs_of(*self.tightest) if self.tightest is not None else []


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


def rate_headers(scopes: Sequence[Scope], levels: Sequence[tuple[int, int]]) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers of the tightest request and token windows over all scopes,
    from each scope's (rpm level, tpm level); none for a kind no scope limits.

    Tightest: fewer remaining, then the lower limit, then the longer wait to refill (the lower
    level); the first scope wins a tie (``_tighter``)."""
    return _headers_of(tightest_of(scopes, levels))


def tightest_of(scopes: Sequence[Scope], levels: Sequence[tuple[int, int]]) -> Tightest:
    """The tightest buckets over ``scopes`` from each one's (rpm level, tpm level)."""
    if len(levels) != len(scopes):
        raise ValueError(f"{len(levels)} levels for {len(scopes)} scopes")
    return (*_tightest(scopes, levels, 0), *_tightest(scopes, levels, 1))


def _headers_of(tightest: Tightest) -> dict[str, str]:
    """The headers of the tightest request and token buckets (``Tightest``) as text."""
    return {name.decode(): value.decode() for name, value in _pairs_of(*tightest)}


def _pairs_of(
    requests_left: int,
    requests_limit: int,
    requests_level: int,
    tokens_left: int,
    tokens_limit: int,
    tokens_level: int,
) -> list[RawHeader]:
    """The headers of the tightest request and token buckets, each given as (remaining,
    limit, level in units; a limit of 0: no scope has that limit), as byte pairs, the
    response's form: names and values are ASCII (the names are ours, the values numbers), so
    no value goes through a text encoding."""
    out: list[RawHeader] = []
    if requests_limit:
        out += _bucket_pairs(_RAW_REQUESTS, requests_left, requests_limit, requests_level)
    if tokens_limit:
        out += _bucket_pairs(_RAW_TOKENS, tokens_left, tokens_limit, tokens_level)
    return out


def _bucket_pairs(
    names: tuple[bytes, bytes, bytes], left: int, limit: int, level: int
) -> tuple[RawHeader, RawHeader, RawHeader]:
    """A bucket's limit, remaining and reset headers, in that order. Every successful
    response carries these. The reset is the ms until the bucket is full again, rounded up
    (a full bucket's, 0 or less, formats as "0s")."""
    wait = (limit * UNIT - level + limit - 1) // limit
    reset = b"%dms" % wait if 0 < wait < 1000 else format_duration(wait).encode()
    return (names[0], b"%d" % limit), (names[1], b"%d" % left), (names[2], reset)


def _tightest(
    scopes: Sequence[Scope], levels: Sequence[tuple[int, int]], kind: int
) -> tuple[int, int, int]:
    """(remaining, limit, level) of the tightest request (``kind`` 0) or token (1) bucket;
    (0, 0, 0) when no scope has that limit."""
    best_remaining = best_limit = best_level = 0  # best_limit 0: no candidate yet
    for i, scope in enumerate(scopes):
        limit = scope.tpm if kind else scope.rpm
        if not limit:
            continue
        level = levels[i][kind]
        remaining = level // UNIT
        if remaining < 0:
            remaining = 0
        elif remaining > limit:
            remaining = limit
        if _tighter(remaining, limit, level, best_remaining, best_limit, best_level):
            best_remaining, best_limit, best_level = remaining, limit, level
    return best_remaining, best_limit, best_level


def _tighter(
    left: int, limit: int, level: int, best_left: int, best_limit: int, best_level: int
) -> bool:
    """Whether a bucket (whole ``left``, ``limit``, ``level`` in units) is tighter than the
    best so far (a ``best_limit`` of 0: none yet): fewer left, then the lower limit, then,
    at the same limit, the lower level (it waits longer to be full)."""
    return (
        not best_limit
        or left < best_left
        or (
            left == best_left
            and (limit < best_limit or (limit == best_limit and level < best_level))
        )
    )


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
    levels: Sequence[tuple[int, int]],
    tokens: int,
    now_ms: int,
) -> ModelyardError:
    """The one error to raise for these failures.

    A spent budget wins (it lasts longest and is not cured by waiting seconds); then a request
    that can never fit; then the rate limit with the longest wait, since retrying any sooner
    would be refused again.
    """
    headers = rate_headers(scopes, levels)
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
    chosen = scopes if type(scopes) is tuple else tuple(scopes)
    count = len(chosen)
    if count > 1 and (
        chosen[0].name == chosen[1].name if count == 2 else len(set(map(_NAME, chosen))) != count
    ):
        raise ValueError(f"scope names must be unique: {[s.name for s in chosen]}")
    return chosen


_NAME = operator.attrgetter("name")


def _refilled(level: int, at_ms: int, limit: int, now_ms: int) -> int:
    """A bucket's level at ``now_ms``: ``limit`` units more per ms since ``at_ms``, at most full."""
    if now_ms > at_ms:
        level += (now_ms - at_ms) * limit
    cap = limit * UNIT
    return cap if level > cap else level


@dataclass(slots=True)
class _Spend:
    spent: int = 0
    reserved: int = 0


class _Counters:
    """One scope's counters. Its two buckets: the limit each was last refilled with (0: never
    used, or unlimited since), the level in units; ``at``, the ms of their last refill. Its
    spend in the current UTC day and month (``None`` without that budget), looked up in
    ``MemoryLimiter._spend`` once a day rather than on every request; ``period`` is the day
    they belong to, ``scope`` the scope they were looked up for (a reload may bring the same
    name with other budgets)."""

    __slots__ = ("at", "day", "month", "period", "rpm", "rpm_level", "scope", "tpm", "tpm_level")

    def __init__(self) -> None:
        self.at = 0
        self.rpm = self.rpm_level = 0
        self.tpm = self.tpm_level = 0
        self.period = ""
        self.scope: Scope | None = None
        self.day: _Spend | None = None
        self.month: _Spend | None = None

    def refill(self, rpm: int | None, tpm: int | None, now_ms: int) -> None:
        """Both buckets brought to ``now_ms`` at the scope's limits (a reload may change them):
        ``limit`` units more per ms, at most full; a bucket first used starts full. Refilling
        again at the same ms changes nothing. This is ``_refilled`` inline, twice: it runs for
        every scope of every request."""
        elapsed = now_ms - self.at
        if elapsed > 0:
            self.at = now_ms
        else:
            elapsed = 0
        if rpm is not None:
            cap = rpm * UNIT
            level = self.rpm_level + elapsed * rpm if self.rpm else cap
            self.rpm, self.rpm_level = rpm, cap if level > cap else level
        else:
            self.rpm = 0  # should the limit come back, its bucket starts full
        if tpm is not None:
            cap = tpm * UNIT
            level = self.tpm_level + elapsed * tpm if self.tpm else cap
            self.tpm, self.tpm_level = tpm, cap if level > cap else level
        else:
            self.tpm = 0

    def full(self, now_ms: int) -> bool:
        """Both buckets full at their last limits, so forgetting them changes nothing."""
        rpm, tpm = self.rpm, self.tpm
        return (not rpm or _refilled(self.rpm_level, self.at, rpm, now_ms) == rpm * UNIT) and (
            not tpm or _refilled(self.tpm_level, self.at, tpm, now_ms) == tpm * UNIT
        )


def _committed(spend: _Spend | None) -> int:
    return spend.spent + spend.reserved if spend is not None else 0


@functools.lru_cache(maxsize=4)
def _period_keys(days: int) -> tuple[str, str, str, str]:
    """(day, month, day key, month key) of a day since the epoch, keys as ``_spend`` has them."""
    day, month = _periods_of_day(days)
    return day, month, f"day:{day}", f"month:{month}"


class MemoryLimiter:
    """Counters in this process: the limiter for a single node.

    ``clock`` returns seconds since the epoch (``time.time``); tests inject their own. Full
    buckets and past periods with nothing reserved are dropped once a minute, so memory follows
    the scopes in use, not every scope ever seen.

    Every admitted request goes through ``acquire`` and ``settle``, so both make one pass over
    the scopes' counters and build nothing they do not return; refusals take the general
    ``check_scope`` and ``refusal``.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counters: dict[str, _Counters] = {}  # by scope name
        self._spend: dict[tuple[str, str], _Spend] = {}  # (period key, scope name)
        self._swept_ms = 0

    def _spend_of(self, key: tuple[str, str]) -> _Spend:
        spend = self._spend.get(key)
        if spend is None:
            spend = self._spend[key] = _Spend()
        return spend

    def _counters_of(self, scope: Scope, periods: tuple[str, str, str, str]) -> _Counters:
        """The scope's counters, their spends those of the period ``periods`` names."""
        name = scope.name
        held = self._counters.get(name)
        if held is None:
            held = self._counters[name] = _Counters()
        if held.scope is not scope or held.period != periods[0]:
            held.scope, held.period = scope, periods[0]
            daily, monthly = scope.daily_budget_micros, scope.monthly_budget_micros
            held.day = None if daily is None else self._spend_of((periods[2], name))
            held.month = None if monthly is None else self._spend_of((periods[3], name))
        return held

    async def acquire(self, scopes: Sequence[Scope], tokens: int, cost_micros: int) -> Reservation:
        return self.acquire_now(scopes, tokens, cost_micros)

    async def settle(self, reservation: Reservation, tokens: int, cost_micros: int) -> None:
        self.settle_now(reservation, tokens, cost_micros)

    def acquire_now(self, scopes: Sequence[Scope], tokens: int, cost_micros: int) -> Reservation:
        """``acquire`` without a coroutine: nothing here waits (the meter calls this one).

        One pass: each scope is checked and taken from in turn, and the tightest request and
        token buckets after the take are picked out as it goes (ranked by ``_tighter``, as
        ``rate_headers`` ranks). A refusal gives back what the scopes before it gave. No
        clamping is needed: an admitted request bucket held at least one request, so it keeps
        between 0 and limit - 1 whole requests; an admitted token bucket keeps between 0 and
        limit whole tokens."""
        chosen = check_arguments(scopes, tokens, cost_micros)
        now = round(self._clock() * 1000)
        periods = _period_keys(now // DAY_MS)
        period = periods[0]
        counters = self._counters
        units = tokens * UNIT
        r_left = r_limit = r_level = t_left = t_limit = t_level = 0  # limit 0: none yet
        for taken, scope in enumerate(chosen):
            held = counters.get(scope.name)
            if held is None or held.scope is not scope or held.period != period:
                held = self._counters_of(scope, periods)
            rpm, tpm = scope.rpm, scope.tpm
            held.refill(rpm, tpm, now)
            day, month = held.day, held.month  # set exactly when the scope has that budget
            if (
                (rpm is not None and held.rpm_level < UNIT)
                or (tpm is not None and (tokens > tpm or held.tpm_level < units))
                or (
                    day is not None and day.spent + day.reserved >= (scope.daily_budget_micros or 0)
                )
                or (
                    month is not None
                    and month.spent + month.reserved >= (scope.monthly_budget_micros or 0)
                )
            ):
                self._refuse(chosen, taken, units, cost_micros, tokens, now)
            if rpm is not None:
                level = held.rpm_level = held.rpm_level - UNIT
                left = level // UNIT
                if not r_limit or _tighter(left, rpm, level, r_left, r_limit, r_level):
                    r_left, r_limit, r_level = left, rpm, level
            if tpm is not None:
                level = held.tpm_level = held.tpm_level - units
                left = level // UNIT
                if not t_limit or _tighter(left, tpm, level, t_left, t_limit, t_level):
                    t_left, t_limit, t_level = left, tpm, level
            if day is not None:
                day.reserved += cost_micros
            if month is not None:
                month.reserved += cost_micros
        if now - self._swept_ms >= SWEEP_EVERY_MS:
            self._sweep(now)
        tightest = (r_left, r_limit, r_level, t_left, t_limit, t_level)
        return Reservation(chosen, tokens, cost_micros, period, periods[1], tightest)

    def _refuse(
        self,
        scopes: tuple[Scope, ...],
        taken: int,
        units: int,
        cost_micros: int,
        tokens: int,
        now_ms: int,
    ) -> NoReturn:
        """Give back what the first ``taken`` scopes gave, then raise the refusal made from
        every scope's levels and spends (refilled to ``now_ms``, as ``acquire_now`` left them)."""
        periods = _period_keys(now_ms // DAY_MS)
        levels: list[tuple[int, int]] = []
        failures: list[Failure] = []
        for i, scope in enumerate(scopes):
            held = self._counters_of(scope, periods)
            if i < taken:
                if scope.rpm is not None:
                    held.rpm_level += UNIT
                if scope.tpm is not None:
                    held.tpm_level += units
                for spend in (held.day, held.month):
                    if spend is not None:
                        spend.reserved -= cost_micros
            held.refill(scope.rpm, scope.tpm, now_ms)
            level = (
                held.rpm_level if scope.rpm is not None else 0,
                held.tpm_level if scope.tpm is not None else 0,
            )
            levels.append(level)
            snapshot = (*level, _committed(held.day), _committed(held.month))
            failures.extend(check_scope(i, scope, snapshot, tokens))
        raise refusal(scopes, failures, levels, tokens, now_ms)

    def settle_now(self, reservation: Reservation, tokens: int, cost_micros: int) -> None:
        if reservation.settled or not reservation.enforced:
            return
        if tokens < 0 or cost_micros < 0:
            raise ValueError("tokens and cost must not be negative")
        reservation.settled = True
        extra = tokens - reservation.tokens
        now = 0  # read from the clock only when a bucket must be refilled first
        reserved = reservation.cost_micros
        counters = self._counters
        for scope in reservation.scopes:
            held = counters.get(scope.name)
            limit = scope.tpm
            if limit is not None and extra and (held is not None or extra > 0):
                if held is None:  # swept while full (a refund would leave it full)
                    held = counters[scope.name] = _Counters()
                # A refund needs no refill: capped, refund then refill comes to the same level
                # as refill then refund, now and at every later refill. A debt does.
                if extra > 0 or held.tpm != limit:
                    now = now or round(self._clock() * 1000)
                    held.refill(scope.rpm, limit, now)
                level = held.tpm_level - extra * UNIT
                cap = limit * UNIT
                held.tpm_level = cap if level > cap else level
            if held is not None and held.scope is scope and held.period == reservation.day:
                day, month = held.day, held.month  # set exactly for this scope's budgets
            else:  # the day has turned since, or the counters were swept: look the spends up
                daily = scope.daily_budget_micros is not None
                monthly = scope.monthly_budget_micros is not None
                day = self._spend_of((f"day:{reservation.day}", scope.name)) if daily else None
                month = (
                    self._spend_of((f"month:{reservation.month}", scope.name)) if monthly else None
                )
            if day is not None:
                day.reserved -= reserved
                day.spent += cost_micros
            if month is not None:
                month.reserved -= reserved
                month.spent += cost_micros

    def _sweep(self, now_ms: int) -> None:
        self._swept_ms = now_ms
        full = [name for name, held in self._counters.items() if held.full(now_ms)]
        for name in full:
            del self._counters[name]
        _, _, day_key, month_key = _period_keys(now_ms // DAY_MS)
        current = {day_key, month_key}
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
