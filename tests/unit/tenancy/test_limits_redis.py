"""What only the Redis backend does: the server's clock, replicas sharing a limit, outages."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from modelyard.core.errors import LimitExceeded, UpstreamUnavailable
from modelyard.tenancy.limits import (
    MemoryLimiter,
    Reservation,
    Scope,
    limiter_from_url,
    periods,
)
from modelyard.tenancy.limits_redis import RedisLimiter
from tests.redis_server import free_port, running_redis

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def refill_allowance(elapsed_ms: float, per_minute: int, per_request: int = 1) -> int:
    """Requests the bucket can have refilled while the test ran (+1 ms for TIME's resolution)."""
    return math.floor((elapsed_ms + 1) * per_minute / 60_000 / per_request)


async def test_refill_follows_the_servers_clock(redis_url: str, prefix: str) -> None:
    limiter = RedisLimiter(redis_url, prefix=prefix)
    key = Scope("key:abc", tpm=60_000)  # 1,000 tokens a second
    try:
        await limiter.acquire([key], 60_000, 0)
        with pytest.raises(LimitExceeded) as info:
            await limiter.acquire([key], 200, 0)
        assert info.value.retry_after is not None
        assert 0.15 < info.value.retry_after <= 0.2
        await asyncio.sleep(info.value.retry_after + 0.02)
        await limiter.acquire([key], 200, 0)
    finally:
        await limiter.aclose()


async def test_two_replicas_admit_exactly_the_limit(redis_url: str, prefix: str) -> None:
    a = RedisLimiter(redis_url, prefix=prefix)  # separate pools, like two gateway processes
    b = RedisLimiter(redis_url, prefix=prefix)
    rpm = 150
    key = Scope("project:shared", rpm=rpm, tpm=rpm * 100)
    try:
        started = time.monotonic()
        results = await asyncio.gather(
            *(limiter.acquire([key], 100, 0) for limiter in (a, b) for _ in range(200)),
            return_exceptions=True,
        )
        elapsed_ms = (time.monotonic() - started) * 1000
    finally:
        await a.aclose()
        await b.aclose()
    admitted = sum(isinstance(r, Reservation) for r in results)
    assert all(isinstance(r, Reservation | LimitExceeded) for r in results), results
    assert all(r.enforced for r in results if isinstance(r, Reservation))
    assert rpm <= admitted <= rpm + refill_allowance(elapsed_ms, rpm)


_REPLICA = """
import asyncio, json, sys, time
from modelyard.core.errors import LimitExceeded
from modelyard.tenancy.limits import Reservation, Scope
from modelyard.tenancy.limits_redis import RedisLimiter

async def main(url, prefix, rpm, start_at, attempts):
    limiter = RedisLimiter(url, prefix=prefix)
    await limiter.acquire([Scope("warm-up")], 0, 0)  # connect before the starting gun
    await asyncio.sleep(max(0.0, start_at - time.time()))
    began = time.time()
    results = await asyncio.gather(
        *(limiter.acquire([Scope("project:shared", rpm=rpm)], 0, 0) for _ in range(attempts)),
        return_exceptions=True,
    )
    ended = time.time()
    await limiter.aclose()
    odd = [repr(r) for r in results if not isinstance(r, Reservation | LimitExceeded)]
    odd += ["unenforced" for r in results if isinstance(r, Reservation) and not r.enforced]
    admitted = sum(isinstance(r, Reservation) for r in results)
    print(json.dumps({"admitted": admitted, "odd": odd, "began": began, "ended": ended}))

url, prefix, rpm, start_at, attempts = sys.argv[1:]
asyncio.run(main(url, prefix, int(rpm), float(start_at), int(attempts)))
"""


async def test_two_gateway_processes_share_one_limit(redis_url: str, prefix: str) -> None:
    rpm, start_at = 120, time.time() + 2.0
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _REPLICA,
            redis_url,
            prefix,
            str(rpm),
            str(start_at),
            "200",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [json.loads((await p.communicate())[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert [o["odd"] for o in outputs] == [[], []]
    elapsed_ms = (max(o["ended"] for o in outputs) - min(o["began"] for o in outputs)) * 1000
    # Both really ran at once (which one wins more of the burst is up to the scheduler).
    assert max(o["began"] for o in outputs) < min(o["ended"] for o in outputs)
    total = sum(o["admitted"] for o in outputs)
    assert rpm <= total <= rpm + refill_allowance(elapsed_ms, rpm)


async def test_keys_expire_and_full_buckets_vanish(redis_url: str, prefix: str, raw: Redis) -> None:
    limiter = RedisLimiter(redis_url, prefix=prefix)
    key = Scope("key:abc", rpm=60, tpm=1000, daily_budget_micros=10, monthly_budget_micros=10)
    try:
        before = periods(round(time.time() * 1000))
        r = await limiter.acquire([key], 100, 5)
        assert (r.day, r.month) in (before, periods(round(time.time() * 1000)))
        assert 1000 < await raw.pttl(f"{prefix}rpm:key:abc") <= 2000  # full again in 1 s
        assert 6000 < await raw.pttl(f"{prefix}tpm:key:abc") <= 7000
        day_key = f"{prefix}budget:day:{r.day}:key:abc"
        assert await raw.hgetall(day_key) == {b"reserved": b"5"}
        assert 172_000 < await raw.ttl(day_key) <= 172_800
        assert 3_000_000 < await raw.ttl(f"{prefix}budget:month:{r.month}:key:abc") <= 3_024_000
        await limiter.settle(r, 0, 3)
        assert await raw.exists(f"{prefix}tpm:key:abc") == 0  # refunded to full: nothing kept
        assert await raw.hgetall(day_key) == {b"reserved": b"0", b"spent": b"3"}
    finally:
        await limiter.aclose()


async def test_unreachable_redis_fails_open_by_default(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", prefix=prefix)
    key = Scope("key:abc", rpm=1)
    try:
        with caplog.at_level(logging.WARNING, "modelyard.tenancy.limits"):
            started = time.monotonic()
            held = [await limiter.acquire([key], 10, 10) for _ in range(3)]
            assert time.monotonic() - started < 3
        assert [r.enforced for r in held] == [False] * 3
        assert held[0].headers() == {}
        await limiter.settle(held[0], 10, 10)  # nothing to settle, nothing raised
        assert len([m for m in caplog.messages if "unreachable" in m]) == 1  # once per outage
    finally:
        await limiter.aclose()


async def test_unreachable_redis_fails_closed_when_asked(prefix: str) -> None:
    limiter = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", prefix=prefix, fail_open=False)
    try:
        with pytest.raises(UpstreamUnavailable) as info:
            await limiter.acquire([Scope("key:abc", rpm=1)], 0, 0)
        assert info.value.status == 503
        assert info.value.code == "limiter_unavailable"
        assert info.value.retry_after == 1.0
        assert info.value.__cause__ is not None
    finally:
        await limiter.aclose()


@pytest.mark.redis
async def test_a_redis_restart_is_survived(prefix: str) -> None:
    with running_redis() as server:
        limiter = RedisLimiter(server.url, prefix=prefix, fail_open=False)
        key = Scope("key:abc", rpm=2)
        try:
            held = [await limiter.acquire([key], 0, 0) for _ in range(2)]
            with pytest.raises(LimitExceeded):
                await limiter.acquire([key], 0, 0)
            await asyncio.to_thread(server.stop)
            with pytest.raises(UpstreamUnavailable):
                await limiter.acquire([key], 0, 0)
            await limiter.settle(held[0], 0, 0)  # lost, and says so only in the log
            await asyncio.to_thread(server.start)
            # Same port, new server: no scripts loaded, no counters (no persistence).
            r = await limiter.acquire([key], 0, 0)
            assert r.enforced
            assert r.headers()["x-ratelimit-remaining-requests"] == "1"
        finally:
            await limiter.aclose()


async def test_limiter_from_url_picks_the_backend(redis_url: str) -> None:
    assert isinstance(limiter_from_url(None), MemoryLimiter)
    assert isinstance(limiter_from_url(""), MemoryLimiter)
    shared = limiter_from_url(redis_url)
    assert isinstance(shared, RedisLimiter)
    await shared.aclose()
