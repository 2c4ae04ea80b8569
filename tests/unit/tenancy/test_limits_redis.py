"""What only the Redis backend does: the server's clock, replicas sharing a limit, outages."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from modelyard.core.errors import LimitExceeded, UpstreamUnavailable
from modelyard.tenancy.limits import Reservation, Scope, limiter_from_url, periods
from modelyard.tenancy.limits_memory import MemoryLimiter
from modelyard.tenancy.limits_redis import RedisLimiter
from tests.redis_server import free_port, running_redis

ROOT = Path(__file__).resolve().parents[3]
PATIENT_S = 60.0  # a Redis timeout no loaded machine reaches, where timeouts are not the point


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def refill_allowance(elapsed_ms: float, per_minute: int, per_request: int = 1) -> int:
    """Requests the bucket can have refilled in ``elapsed_ms`` (+1 ms for TIME's resolution)."""
    return math.floor((elapsed_ms + 1) * per_minute / 60_000 / per_request)


async def redis_ms(raw: Redis) -> int:
    """The Redis server's clock, the one the limiter's scripts read, in milliseconds."""
    seconds, micros = await raw.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def test_refill_follows_the_servers_clock(redis_url: str, prefix: str, raw: Redis) -> None:
    """Every bound comes from Redis's own clock read around the calls, so they hold however
    long the machine makes each round trip."""
    limiter = RedisLimiter(redis_url, prefix=prefix)
    key = Scope("key:abc", tpm=60_000)  # 1,000 tokens a second: one a millisecond
    try:
        before = await redis_ms(raw)
        await limiter.acquire([key], 60_000, 0)  # empty, at `emptied` >= before
        with pytest.raises(LimitExceeded) as first:
            await limiter.acquire([key], 60_000, 0)  # a whole bucket: refused for ~60 s
        between = await redis_ms(raw)
        # It waits for what is missing: 60,000 less what refilled since `emptied`.
        first_wait = first.value.retry_after
        assert first_wait is not None
        waited = round(60_000 - first_wait * 1000)  # refilled tokens = ms
        assert 0 <= waited <= between - before + 1
        # Let Redis's clock move on (polled, not slept); the refill follows it, not ours.
        moved_from = await redis_ms(raw)
        while moved_from < between + 20:
            moved_from = await redis_ms(raw)
        with pytest.raises(LimitExceeded) as second:
            await limiter.acquire([key], 60_000, 0)
        after = await redis_ms(raw)
        second_wait = second.value.retry_after
        assert second_wait is not None
        refilled_ms = round((first_wait - second_wait) * 1000)
        assert moved_from - between - 1 <= refilled_ms <= after - before + 1
        # What has refilled by now (at least moved_from - between ms) can be taken.
        await limiter.acquire([key], max(1, moved_from - between - 1), 0)
    finally:
        await limiter.aclose()


async def test_two_replicas_admit_exactly_the_limit(
    redis_url: str, prefix: str, raw: Redis
) -> None:
    # Separate pools, like two gateway processes. The burst queues 400 calls for a few pooled
    # connections: a loaded machine must not turn the wait into the 1 s timeout's fail-open.
    a = RedisLimiter(redis_url, prefix=prefix, timeout_s=PATIENT_S)
    b = RedisLimiter(redis_url, prefix=prefix, timeout_s=PATIENT_S)
    rpm = 150
    key = Scope("project:shared", rpm=rpm, tpm=rpm * 100)
    try:
        began = await redis_ms(raw)
        results = await asyncio.gather(
            *(limiter.acquire([key], 100, 0) for limiter in (a, b) for _ in range(200)),
            return_exceptions=True,
        )
        redis_ms_taken = await redis_ms(raw) - began
    finally:
        await a.aclose()
        await b.aclose()
    admitted = sum(isinstance(r, Reservation) for r in results)
    assert all(isinstance(r, Reservation | LimitExceeded) for r in results), results
    assert all(r.enforced for r in results if isinstance(r, Reservation))
    assert rpm <= admitted <= rpm + refill_allowance(redis_ms_taken, rpm)


_REPLICA = """
import asyncio, json, sys
from redis.asyncio import Redis
from modelyard.core.errors import LimitExceeded
from modelyard.tenancy.limits import Reservation, Scope
from modelyard.tenancy.limits_redis import RedisLimiter

async def main(url, prefix, rpm, attempts):
    limiter = RedisLimiter(url, prefix=prefix, timeout_s=60)
    await limiter.acquire([Scope("warm-up")], 0, 0)  # connect before the starting gun
    gun = Redis.from_url(url)
    await gun.rpush(prefix + "ready", 1)
    await gun.blpop([prefix + "go"])
    await gun.aclose()
    results = await asyncio.gather(
        *(limiter.acquire([Scope("project:shared", rpm=rpm)], 0, 0) for _ in range(attempts)),
        return_exceptions=True,
    )
    await limiter.aclose()
    odd = [repr(r) for r in results if not isinstance(r, Reservation | LimitExceeded)]
    odd += ["unenforced" for r in results if isinstance(r, Reservation) and not r.enforced]
    admitted = sum(isinstance(r, Reservation) for r in results)
    print(json.dumps({"admitted": admitted, "odd": odd}))

url, prefix, rpm, attempts = sys.argv[1:]
asyncio.run(main(url, prefix, int(rpm), int(attempts)))
"""


async def test_two_gateway_processes_share_one_limit(
    redis_url: str, prefix: str, raw: Redis
) -> None:
    rpm = 120
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _REPLICA,
            redis_url,
            prefix,
            str(rpm),
            "200",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    # The starting gun fires once both are connected and waiting, however long that took.
    for _ in procs:
        assert await raw.blpop([f"{prefix}ready"], timeout=120) is not None, "a replica hung"
    began = await redis_ms(raw)
    await raw.rpush(f"{prefix}go", 1, 1)
    outputs = [json.loads((await p.communicate())[0]) for p in procs]
    redis_ms_taken = await redis_ms(raw) - began
    assert [p.returncode for p in procs] == [0, 0]
    assert [o["odd"] for o in outputs] == [[], []]
    # Two processes with a limit each would admit up to 2 x rpm; sharing one, they admit rpm
    # plus what refilled meanwhile (which one wins more of the burst is up to the scheduler).
    total = sum(o["admitted"] for o in outputs)
    assert rpm <= total <= rpm + refill_allowance(redis_ms_taken, rpm)


async def test_keys_expire_and_full_buckets_vanish(redis_url: str, prefix: str, raw: Redis) -> None:
    limiter = RedisLimiter(redis_url, prefix=prefix)
    key = Scope("key:abc", rpm=60, tpm=1000, daily_budget_micros=10, monthly_budget_micros=10)
    try:
        started = await redis_ms(raw)
        r = await limiter.acquire([key], 100, 5)
        rpm_ttl = await raw.pttl(f"{prefix}rpm:key:abc")
        tpm_ttl = await raw.pttl(f"{prefix}tpm:key:abc")
        since = await redis_ms(raw) - started + 1  # how much of a TTL may have run down
        assert (r.day, r.month) in {periods(started), periods(started + since)}
        assert 2000 - since <= rpm_ttl <= 2000  # full again in 1 s, kept 1 s longer
        assert 7000 - since <= tpm_ttl <= 7000  # 100 of 1,000 tokens back in 6 s
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
            async with asyncio.timeout(60):  # a refused connection is no reason to hang
                held = [await limiter.acquire([key], 10, 10) for _ in range(3)]
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
