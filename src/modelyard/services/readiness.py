"""What ``/readyz`` answers: whether this replica can serve, and the state of what it leans on.

Each dependency is probed with a short timeout (a probe never hangs on a dead peer) and the
answer is kept for a second (a burst of probes costs one round trip each way). The replica is
*not ready* (503) when it cannot answer requests: the embedded model is enabled and not loaded,
or Redis is unreachable while limits fail closed (every request would be a 503 anyway). An
unreachable store only degrades it (200, ``"store": "unreachable"``): keys are served from the
cache and ledger rows wait in their queue, and since every replica shares the one store,
failing readiness on it would turn a store outage into a total outage behind the balancer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import orjson

PROBE_TIMEOUT_S = 1.0
KEEP_S = 1.0


@runtime_checkable
class Pingable(Protocol):
    """A shared dependency that can say whether it answers (the Redis limiter)."""

    async def ping(self) -> bool: ...


@dataclass(slots=True)
class _Kept:
    at: float = -KEEP_S
    ok: bool = False


@dataclass(slots=True)
class Readiness:
    """The probes, each bounded by ``timeout_s`` and its result kept for ``KEEP_S``.
    ``clock``: monotonic seconds (tests)."""

    clock: Callable[[], float] = time.monotonic
    timeout_s: float = PROBE_TIMEOUT_S
    _kept: dict[str, _Kept] = field(default_factory=dict)

    async def check(self, name: str, probe: Callable[[], Awaitable[bool]]) -> bool:
        kept = self._kept.setdefault(name, _Kept())
        now = self.clock()
        if now - kept.at < KEEP_S:
            return kept.ok
        try:
            kept.ok = await asyncio.wait_for(probe(), self.timeout_s)
        except TimeoutError:
            kept.ok = False
        kept.at = now
        return kept.ok


@dataclass(frozen=True, slots=True)
class States:
    """Each dependency as ``ok``/``unreachable``/``none`` (not used); ``local``: ``ready``,
    ``not ready`` or ``off``."""

    store: str
    redis: str
    local: str
    redis_required: bool

    @property
    def ready(self) -> bool:
        return self.local != "not ready" and not (self.redis_required and self.redis != "ok")

    def body(self) -> bytes:
        status = "ready" if self.ready else "not ready"
        return orjson.dumps(
            {"status": status, "store": self.store, "redis": self.redis, "local": self.local}
        )


def state(ok: bool | None) -> str:
    return "none" if ok is None else ("ok" if ok else "unreachable")
