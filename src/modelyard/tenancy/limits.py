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
_RAW_LIMIT_REQUESTS, _RAW_REMAINING_REQUESTS, _RAW_RESET_REQUESTS = (
    LIMIT_REQUESTS.encode(),
    REMAINING_REQUESTS.encode(),
    RESET_REQUESTS.encode(),
)
_RAW_LIMIT_TOKENS, _RAW_REMAINING_TOKENS, _RAW_RESET_TOKENS = (
    LIMIT_TOKENS.encode(),
    REMAINING_TOKENS.encode(),
    RESET_TOKENS.encode(),
)
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
    level); the first scope wins a tie (``_tightest``)."""
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
    no value goes through a text encoding. Each bucket's limit, remaining and reset, in that
    order; every successful limited response carries them."""
    out: list[RawHeader] = []
    if requests_limit:
        out += (
            (_RAW_LIMIT_REQUESTS, b"%d" % requests_limit),
            (_RAW_REMAINING_REQUESTS, b"%d" % requests_left),
            (_RAW_RESET_REQUESTS, _reset(requests_limit, requests_level)),
        )
    if tokens_limit:
        out += (
            (_RAW_LIMIT_TOKENS, b"%d" % tokens_limit),
            (_RAW_REMAINING_TOKENS, b"%d" % tokens_left),
            (_RAW_RESET_TOKENS, _reset(tokens_limit, tokens_level)),
        )
    return out


def _reset(limit: int, level: int) -> bytes:
    """The reset header's value: the ms until the bucket is full again, rounded up (a full
    bucket's, 0 or less, formats as "0s")."""
    wait = (limit * UNIT - level + limit - 1) // limit
    return b"%dms" % wait if 0 < wait < 1000 else format_duration(wait).encode()


def _tightest(
    scopes: Sequence[Scope], levels: Sequence[tuple[int, int]], kind: int
) -> tuple[int, int, int]:
    """(remaining, limit, level) of the tightest request (``kind`` 0) or token (1) bucket;
    (0, 0, 0) when no scope has that limit. Tightest: fewer remaining, then the lower limit,
    then, at the same limit, the lower level (it waits longer to be full): the least such
    triple; the first scope wins a tie."""
    best = _NO_BUCKET
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
        bucket = (remaining, limit, level)
        if best is _NO_BUCKET or bucket < best:
            best = bucket
    return best


# (remaining, limit, level) of the tightest bucket of one kind; a limit of 0: none.
_NO_BUCKET = (0, 0, 0)


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
    after it (ranked as ``_tightest`` ranks), or None when one holds too few: then nothing
    is taken (the buckets before it get theirs back).

    No clamping is needed: an admitted request bucket held at least one request, so it keeps
    between 0 and limit - 1 whole requests; a token bucket between 0 and limit tokens."""
    best = _NO_BUCKET
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
        if best is _NO_BUCKET or taken < best:
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
        self.day, self.month = _periods_of_day(days)

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
        day = _periods_of_day(days)[0]
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
        today = _periods_of_day(days)[0]
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
        month = _periods_of_day(now_ms // DAY_MS)[1]
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


def limiter_from_url(redis_url: str | None, *, fail_open: bool = True) -> Limiter:
    """A ``RedisLimiter`` shared by every replica when ``redis_url`` is set, else memory."""
    if not redis_url:
        return MemoryLimiter()
    from modelyard.tenancy.limits_redis import RedisLimiter

    return RedisLimiter(redis_url, fail_open=fail_open)
