"""``/readyz``'s parts: the verdict from the states, probes bounded and kept for a second."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import orjson
import pytest
from tests.redis_server import running_redis

from modelyard.services.readiness import KEEP_S, Readiness, States, state
from modelyard.tenancy.limits_redis import RedisLimiter


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as server:
        yield server.url


@pytest.mark.parametrize(
    ("states", "ready"),
    [
        (States("ok", "ok", "ready", redis_required=True), True),
        (States("unreachable", "ok", "off", redis_required=False), True),  # degraded, serving
        (States("ok", "unreachable", "off", redis_required=False), True),  # limits fail open
        (States("ok", "unreachable", "off", redis_required=True), False),  # limits fail closed
        (States("ok", "none", "not ready", redis_required=False), False),
    ],
)
def test_the_verdict_follows_what_the_replica_can_serve(states: States, ready: bool) -> None:
    assert states.ready is ready
    body = orjson.loads(states.body())
    assert body == {
        "status": "ready" if ready else "not ready",
        "store": states.store,
        "redis": states.redis,
        "local": states.local,
    }


def test_states_are_named() -> None:
    assert [state(None), state(True), state(False)] == ["none", "ok", "unreachable"]


class _Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_probe_that_hangs_is_unreachable_and_answers_are_kept() -> None:
    clock, calls = _Clock(), []
    never = asyncio.Event()

    async def hangs() -> bool:
        calls.append(1)
        await never.wait()
        return True

    readiness = Readiness(clock, timeout_s=0.05)
    assert await readiness.check("store", hangs) is False
    assert await readiness.check("store", hangs) is False  # kept: not probed again
    assert len(calls) == 1
    clock.now += KEEP_S

    async def answers() -> bool:
        calls.append(2)
        return True

    assert await readiness.check("store", answers) is True  # a second later: probed again
    assert calls == [1, 2]


async def test_the_redis_limiter_says_when_redis_is_gone() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    limiter = RedisLimiter(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)
    try:
        assert await limiter.ping() is False
    finally:
        await limiter.aclose()


async def test_the_redis_limiter_answers_when_redis_is_up(redis_url: str) -> None:
    limiter = RedisLimiter(redis_url)
    try:
        assert await limiter.ping() is True
    finally:
        await limiter.aclose()
