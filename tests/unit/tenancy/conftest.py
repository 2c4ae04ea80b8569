"""Every limiter test runs against the memory backend and a real Redis server.

Time is injected (a ``FakeClock``) into both backends, so refill and period changes are exact
and instant; the Redis-only tests that need the server's own clock build their limiters
without it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from modelyard.tenancy.limits import Limiter
from modelyard.tenancy.limits_memory import MemoryLimiter
from modelyard.tenancy.limits_redis import RedisLimiter
from tests.redis_server import running_redis

START = 1_796_212_800.0  # 2026-12-02T12:00:00Z


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with running_redis() as server:
        yield server.url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def prefix() -> str:
    """A fresh key space per test on the shared server."""
    return f"test:{uuid.uuid4().hex}:"


@pytest.fixture(params=["memory", "redis"])
async def make_limiter(
    request: pytest.FixtureRequest, clock: FakeClock, prefix: str
) -> AsyncIterator[Callable[[], Limiter]]:
    """Build limiters of one backend sharing one state (one Redis key space), closed after."""
    made: list[Limiter] = []
    memory = MemoryLimiter(clock=clock)
    url: str = request.getfixturevalue("redis_url") if request.param == "redis" else ""

    def make() -> Limiter:
        if request.param == "memory":
            return memory
        limiter = RedisLimiter(url, prefix=prefix, clock=clock)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.aclose()


@pytest.fixture
def limiter(make_limiter: Callable[[], Limiter]) -> Limiter:
    return make_limiter()
