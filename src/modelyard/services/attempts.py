"""One request's walk through its candidate targets: failover, retries, breakers, budget.

A failure moves on to the next candidate at once when there is a healthy one; coming back to a
target already tried waits a jittered exponential backoff (or the upstream's Retry-After, when
longer). Nothing is retried that the client got wrong, a target that answered with an error that
will not change (``same_target`` false: our key, account or model there is wrong) is not tried
again in the same request, and nothing waits past the budget.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from modelyard.core.errors import ModelyardError, UpstreamUnavailable
from modelyard.providers.errors import unreadable
from modelyard.routing.retry import backoff_s, is_retryable
from modelyard.services.gateway import Resolved

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
log = logging.getLogger("modelyard.attempts")


@dataclass(slots=True)
class Outcome(Generic[T]):
    value: T
    chosen: Resolved
    attempts: int


@dataclass(slots=True)
class AttemptLoop:
    plan: list[Resolved]
    rng: random.Random
    sleep: Sleep = asyncio.sleep
    failures: list[tuple[str, ModelyardError]] = field(default_factory=list)
    # Targets whose error would repeat on this target (``same_target`` false): skipped from then on.
    excluded: set[int] = field(default_factory=set)
    # The routing decision of a strategy that reads the request, for the ledger (or None).
    route: str | None = None

    async def run(self, call: Callable[[Resolved], Awaitable[T]]) -> Outcome[T]:
        deployment = self.plan[0].deployment
        policy = deployment.retry
        started = time.monotonic()
        attempt = 0
        position = 0
        while attempt < policy.attempts:
            chosen, position = self._next_available(position)
            if chosen is None:
                break
            attempt += 1
            t0 = time.monotonic()
            try:
                value = await call(chosen)
            except Exception as exc:  # noqa: BLE001  # translated and recorded below, not swallowed
                err = exc if isinstance(exc, ModelyardError) else _classified(chosen, exc)
                if not is_retryable(err):
                    raise err from (None if err is exc else exc)
                chosen.health.failure()
                self.failures.append((chosen.target.key, err))
                if not err.same_target:
                    self.excluded.add(position - 1)
                    if len(self.excluded) == len(self.plan):
                        break  # every target would answer the same again: no wait, no retry
                wait = self._wait_before(position, chosen, err, attempt)
                if (
                    attempt >= policy.attempts
                    or time.monotonic() - started + wait > policy.budget_s
                ):
                    break
                if wait > 0:
                    await self.sleep(wait)
                continue
            chosen.health.success(time.monotonic() - t0)
            return Outcome(value, chosen, attempt)
        raise self._exhausted(deployment.name)

    def _next_available(self, position: int) -> tuple[Resolved | None, int]:
        """The next candidate (cycling) whose breaker lets a request through."""
        for step in range(len(self.plan)):
            index = (position + step) % len(self.plan)
            candidate = self.plan[index]
            if index not in self.excluded and candidate.health.available():
                return candidate, index + 1
        return None, position

    def _wait_before(
        self, position: int, chosen: Resolved, err: ModelyardError, attempt: int
    ) -> float:
        upcoming = self.plan[position % len(self.plan)]
        if (
            upcoming is not chosen
            and position % len(self.plan) not in self.excluded
            and upcoming.health.state == "closed"
        ):
            return 0.0  # fail over to another healthy target at once
        wait = backoff_s(chosen.deployment.retry, attempt, self.rng)
        return max(wait, err.retry_after or 0.0)

    def _exhausted(self, deployment: str) -> ModelyardError:
        if not self.failures:
            tried = ", ".join(c.target.key for c in self.plan)
            return UpstreamUnavailable(
                f"deployment {deployment!r}: every target is failing and its circuit is open "
                f"({tried}); retry later",
                retry_after=1.0,
            )
        last = copy.copy(self.failures[-1][1])
        summary = "; ".join(f"{key}: {err.message}" for key, err in self.failures)
        last.message = (
            f"deployment {deployment!r}: {len(self.failures)} attempt(s) failed: {summary}"
        )
        last.args = (last.message,)
        return last


def _classified(chosen: Resolved, exc: Exception) -> ModelyardError:
    """Anything but a ``ModelyardError`` from a call is the upstream's doing (an answer the
    adapter could not read): a retryable upstream failure, so the breaker hears of it and the
    next target is tried. One short line says where; the traceback only at debug level."""
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    site = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else "?"
    log.warning("%s: unreadable answer (%s at %s)", chosen.target.key, type(exc).__name__, site)
    log.debug("unreadable answer from %s", chosen.target.key, exc_info=exc)
    return unreadable(chosen.provider.error_label(), exc)
