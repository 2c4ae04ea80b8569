"""Rate limits and budgets per key and per project: the limiter's contract and shared parts.

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

Two limiters keep this contract: ``MemoryLimiter`` (``limits_memory``), counters in this
process, and ``RedisLimiter`` (``limits_redis``), shared by every replica; ``limiter_from_url``
picks one. This module holds what both share: the types, the checks, the refusals and the
headers.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from modelyard.core.errors import BudgetExceeded, LimitExceeded, ModelyardError
from modelyard.core.money import MICROS_PER_DOLLAR

UNIT = 60_000  # bucket units per token; refill is `limit` units per ms, so a minute fills it
DAY_MS = 86_400_000

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
    return periods_of_day(now_ms // DAY_MS)


@functools.lru_cache(maxsize=4)
def periods_of_day(days: int) -> tuple[str, str]:
    """``periods`` of a UTC day given in days since the epoch (the few latest kept)."""
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
    best = NO_BUCKET
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
        if best is NO_BUCKET or bucket < best:
            best = bucket
    return best


# (remaining, limit, level) of the tightest bucket of one kind; a limit of 0: none. Shared
# with the memory limiter's ``_take``, which ranks its buckets the same way.
NO_BUCKET = (0, 0, 0)


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


def limiter_from_url(redis_url: str | None, *, fail_open: bool = True) -> Limiter:
    """A ``RedisLimiter`` shared by every replica when ``redis_url`` is set, else memory."""
    if not redis_url:
        from modelyard.tenancy.limits_memory import MemoryLimiter

        return MemoryLimiter()
    from modelyard.tenancy.limits_redis import RedisLimiter

    return RedisLimiter(redis_url, fail_open=fail_open)
