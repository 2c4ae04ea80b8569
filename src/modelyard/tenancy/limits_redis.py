"""Rate limits and budgets shared by every replica, in Redis.

One Lua script acquires across all scopes (read every counter, check every limit, then write
every counter, or write nothing) and one settles; Redis runs a script whole, so N replicas
enforce one limit, not N. The scripts read the time from the Redis server (``TIME``), so
replicas with drifting clocks still agree on refill and on the UTC day and month. The bucket
arithmetic and the checks are those of ``limits`` (exact integers; Lua's doubles hold them
exactly below 2**53, which a limit under 10**9 per minute keeps to).

Keys, under ``prefix``: ``rpm:<scope>`` and ``tpm:<scope>`` (hash ``l`` level, ``t`` ms;
deleted when full, and expiring when they would be), ``budget:day:2026-12-02:<scope>`` and
``budget:month:2026-12:<scope>`` (hash ``spent``, ``reserved``; kept 2 and 35 days after the
last write). The budget keys are named inside the script from the server's date, so this needs a
single Redis primary (or Sentinel), not Redis Cluster.

When Redis cannot be reached, ``fail_open`` (the default) admits the request unenforced and
logs it: an outage of the limits store should not take every model offline with it. With
``fail_open=False`` the request is refused with a 503 (``limiter_unavailable``). Settling never
raises: a lost settle leaves the estimate in place, which errs on the side of the limit. Counters
live only in Redis: a Redis restart without persistence starts every bucket full and every budget
period at zero (the usage ledger, not this, is the record of spend).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from modelyard.core.errors import UpstreamUnavailable
from modelyard.tenancy.limits import (
    KINDS,
    Failure,
    Reservation,
    Scope,
    check_arguments,
    periods,
    refusal,
    tightest_of,
)

log = logging.getLogger("modelyard.tenancy.limits")

DEFAULT_PREFIX = "modelyard:limits:"
_NONE = -1  # an absent limit, in script arguments

_COMMON = """
local UNIT = 60000
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local function ceil_div(a, b) return -idiv(-a, b) end
local function now_ms()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + idiv(tonumber(t[2]), 1000)
end
local function periods(now)
  local z = idiv(now, 86400000) + 719468
  local era = idiv(z, 146097)
  local doe = z - era * 146097
  local yoe = idiv(doe - idiv(doe, 1460) + idiv(doe, 36524) - idiv(doe, 146096), 365)
  local doy = doe - (365 * yoe + idiv(yoe, 4) - idiv(yoe, 100))
  local mp = idiv(5 * doy + 2, 153)
  local d = doy - idiv(153 * mp + 2, 5) + 1
  local m = mp + 3
  if mp >= 10 then m = mp - 9 end
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02d', y, m, d), string.format('%04d-%02d', y, m)
end
local function level(key, limit, now)
  local cap = limit * UNIT
  local v = redis.call('HMGET', key, 'l', 't')
  if not v[1] then return cap, now end
  local at = tonumber(v[2])
  local lv = tonumber(v[1]) + math.max(0, now - at) * limit
  if lv > cap then lv = cap end
  return lv, math.max(now, at)
end
local function put(key, limit, lv, at)
  local cap = limit * UNIT
  if lv >= cap then
    redis.call('DEL', key)
    return
  end
  redis.call('HSET', key, 'l', lv, 't', at)
  redis.call('PEXPIRE', key, ceil_div(cap - lv, limit) + 1000)
end
local function committed(key)
  local v = redis.call('HMGET', key, 'spent', 'reserved')
  return (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
end
local DAY_TTL, MONTH_TTL = 172800, 3024000
"""

# ARGV: now|'', prefix, tokens, cost, n, then per scope: name, rpm, tpm, day budget, month
# budget (-1 = none). Returns {ok, now, day, month, (rpm level, tpm level) per scope, then
# (scope index, limit kind 1..4, wait ms) per failure}. Levels are after the take when ok.
_ACQUIRE = (
    _COMMON
    + """
local now = now_ms()
local day, month = periods(now)
local prefix, tokens, cost = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local scopes, fails = {}, {}
for i = 1, n do
  local b = 5 + (i - 1) * 5
  local s = {rpm = tonumber(ARGV[b + 2]), tpm = tonumber(ARGV[b + 3]),
             dayb = tonumber(ARGV[b + 4]), monthb = tonumber(ARGV[b + 5]),
             rl = 0, tl = 0}
  s.rk, s.tk = prefix .. 'rpm:' .. ARGV[b + 1], prefix .. 'tpm:' .. ARGV[b + 1]
  s.dk = prefix .. 'budget:day:' .. day .. ':' .. ARGV[b + 1]
  s.mk = prefix .. 'budget:month:' .. month .. ':' .. ARGV[b + 1]
  if s.rpm > 0 then
    s.rl, s.rt = level(s.rk, s.rpm, now)
    if s.rl < UNIT then table.insert(fails, {i, 1, ceil_div(UNIT - s.rl, s.rpm)}) end
  end
  if s.tpm > 0 then
    s.tl, s.tt = level(s.tk, s.tpm, now)
    if tokens > s.tpm then
      table.insert(fails, {i, 2, -1})
    elseif s.tl < tokens * UNIT then
      table.insert(fails, {i, 2, ceil_div(tokens * UNIT - s.tl, s.tpm)})
    end
  end
  if s.dayb >= 0 and committed(s.dk) >= s.dayb then table.insert(fails, {i, 3, 0}) end
  if s.monthb >= 0 and committed(s.mk) >= s.monthb then table.insert(fails, {i, 4, 0}) end
  scopes[i] = s
end
local ok = 0
if #fails == 0 then
  ok = 1
  for i = 1, n do
    local s = scopes[i]
    if s.rpm > 0 then s.rl = s.rl - UNIT; put(s.rk, s.rpm, s.rl, s.rt) end
    if s.tpm > 0 then s.tl = s.tl - tokens * UNIT; put(s.tk, s.tpm, s.tl, s.tt) end
    if s.dayb >= 0 then
      redis.call('HINCRBY', s.dk, 'reserved', cost)
      redis.call('EXPIRE', s.dk, DAY_TTL)
    end
    if s.monthb >= 0 then
      redis.call('HINCRBY', s.mk, 'reserved', cost)
      redis.call('EXPIRE', s.mk, MONTH_TTL)
    end
  end
end
local out = {ok, now, day, month}
for i = 1, n do
  table.insert(out, scopes[i].rl)
  table.insert(out, scopes[i].tl)
end
for _, f in ipairs(fails) do
  table.insert(out, f[1]); table.insert(out, f[2]); table.insert(out, f[3])
end
return out
"""
)

# ARGV: now|'', prefix, extra tokens (actual - estimate), estimated cost, actual cost, day,
# month, n, then per scope: name, tpm (-1 = none), has day budget, has month budget (0/1).
_SETTLE = (
    _COMMON
    + """
local now = now_ms()
local prefix, extra = ARGV[2], tonumber(ARGV[3])
local est, cost, day, month = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
local n = tonumber(ARGV[8])
for i = 1, n do
  local b = 8 + (i - 1) * 4
  local name, tpm = ARGV[b + 1], tonumber(ARGV[b + 2])
  if tpm > 0 and extra ~= 0 then
    local key = prefix .. 'tpm:' .. name
    local lv, at = level(key, tpm, now)
    lv = math.min(tpm * UNIT, lv - extra * UNIT)
    put(key, tpm, lv, at)
  end
  local budgets = {{ARGV[b + 3], 'budget:day:' .. day, DAY_TTL},
                   {ARGV[b + 4], 'budget:month:' .. month, MONTH_TTL}}
  for _, bud in ipairs(budgets) do
    if bud[1] == '1' then
      local key = prefix .. bud[2] .. ':' .. name
      redis.call('HINCRBY', key, 'reserved', -est)
      redis.call('HINCRBY', key, 'spent', cost)
      redis.call('EXPIRE', key, bud[3])
    end
  end
end
return now
"""
)


def _opt(value: int | None) -> int:
    return _NONE if value is None else value


class RedisLimiter:
    """The limiter for several replicas: counters in one Redis, changed by atomic scripts.

    ``clock`` (seconds since the epoch) replaces the Redis server's time; leave it ``None``
    outside tests, so every replica reads the one clock of the server. ``timeout_s`` bounds each
    round trip and the wait for one of the ``max_connections`` pooled connections, so an
    unreachable Redis costs a request at most about twice that.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        fail_open: bool = True,
        clock: Callable[[], float] | None = None,
        timeout_s: float = 1.0,
        max_connections: int = 32,
    ) -> None:
        pool = BlockingConnectionPool.from_url(
            url,
            # A burst waits for one of a few connections rather than opening one per request:
            # Redis runs scripts one at a time anyway, and its client limit is finite.
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            # One immediate retry covers a pooled connection that a Redis restart has closed.
            retry=Retry(NoBackoff(), 1),
        )
        self._redis: Redis = Redis.from_pool(pool)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._settle = self._redis.register_script(_SETTLE)
        self._prefix = prefix
        self._fail_open = fail_open
        self._clock = clock
        self._down = False

    def _now_arg(self) -> str:
        return "" if self._clock is None else str(round(self._clock() * 1000))

    async def acquire(self, scopes: Sequence[Scope], tokens: int, cost_micros: int) -> Reservation:
        chosen = check_arguments(scopes, tokens, cost_micros)
        args: list[str | int] = [self._now_arg(), self._prefix, tokens, cost_micros, len(chosen)]
        for s in chosen:
            args += [
                s.name,
                _opt(s.rpm),
                _opt(s.tpm),
                _opt(s.daily_budget_micros),
                _opt(s.monthly_budget_micros),
            ]
        try:
            reply: list[Any] = await self._acquire(args=args)
        except (RedisError, OSError) as exc:
            return self._unavailable(chosen, tokens, cost_micros, exc)
        self._recovered()
        ok, now, day, month = int(reply[0]), int(reply[1]), _text(reply[2]), _text(reply[3])
        numbers = [int(v) for v in reply[4:]]
        levels = [(numbers[2 * i], numbers[2 * i + 1]) for i in range(len(chosen))]
        if not ok:
            rest = numbers[2 * len(chosen) :]
            failures = [
                Failure(rest[j] - 1, KINDS[rest[j + 1] - 1], rest[j + 2])
                for j in range(0, len(rest), 3)
            ]
            raise refusal(chosen, failures, levels, tokens, now)
        return Reservation(chosen, tokens, cost_micros, day, month, tightest_of(chosen, levels))

    def _unavailable(
        self, scopes: tuple[Scope, ...], tokens: int, cost: int, exc: Exception
    ) -> Reservation:
        if not self._down:
            self._down = True
            mode = "admitting requests unenforced" if self._fail_open else "refusing requests"
            log.warning("rate-limit store unreachable (%s): %s", exc, mode)
        if not self._fail_open:
            raise UpstreamUnavailable(
                "rate limits cannot be checked right now (the limits store is unreachable)",
                code="limiter_unavailable",
                retry_after=1.0,
            ) from exc
        day, month = periods(round((self._clock or time.time)() * 1000))
        return Reservation(scopes, tokens, cost, day, month, enforced=False)

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.warning("rate-limit store reachable again: limits enforced")

    async def settle(self, reservation: Reservation, tokens: int, cost_micros: int) -> None:
        if reservation.settled or not reservation.enforced:
            return
        if tokens < 0 or cost_micros < 0:
            raise ValueError("tokens and cost must not be negative")
        reservation.settled = True
        args: list[str | int] = [
            self._now_arg(),
            self._prefix,
            tokens - reservation.tokens,
            reservation.cost_micros,
            cost_micros,
            reservation.day,
            reservation.month,
            len(reservation.scopes),
        ]
        for s in reservation.scopes:
            args += [
                s.name,
                _opt(s.tpm),
                int(s.daily_budget_micros is not None),
                int(s.monthly_budget_micros is not None),
            ]
        try:
            await self._settle(args=args)
        except (RedisError, OSError) as exc:
            # The request is over; failing it now would help nobody. The estimate stays counted.
            log.warning("rate-limit store unreachable, usage not settled: %s", exc)

    async def ping(self) -> bool:
        """Whether Redis answers (``/readyz``), within the round-trip timeout."""
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def aclose(self) -> None:
        await self._redis.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
