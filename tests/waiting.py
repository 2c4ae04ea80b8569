"""Waiting in tests on what happens, never on how long it usually takes.

``ManualTicks`` replaces a background loop's clock (``modelyard.store.ticks.Tick``): the test
fires each round and learns when it is over. ``wait_until`` and ``eventually`` poll a condition
that lives in another process (a database row, a restarted worker) until it holds, with a
deadline far beyond any normal run: a slow machine makes them wait longer, never fail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# Only for conditions that no event can announce (another process's state). Generous, because
# reaching it is a failure, not a measurement.
DEADLINE_S = 120.0
_POLL_S = 0.02


class ManualTicks:
    """A ``Tick`` driven by the test: ``tick()`` makes the next round due and returns once that
    round is over (the loop waits again), so the round's effects are all there."""

    def __init__(self) -> None:
        self._due = asyncio.Event()
        self._changed = asyncio.Condition()
        self._taken_at: int | None = None  # the wait that took the last tick
        self.waits = 0  # how many times the loop has come to wait

    async def __call__(self, wake: asyncio.Event) -> None:
        async with self._changed:
            self.waits += 1
            self._changed.notify_all()
        if not self._due.is_set():
            await _first_of(self._due.wait(), wake.wait())
        if self._due.is_set():
            self._due.clear()
            self._taken_at = self.waits

    async def waiting(self, times: int = 1) -> None:
        """Return once the loop has come to wait ``times`` times in all."""
        async with asyncio.timeout(DEADLINE_S), self._changed:
            await self._changed.wait_for(lambda: self.waits >= times)

    async def tick(self) -> None:
        """Make a round due now and return when it is over."""
        self._taken_at = None
        self._due.set()
        async with asyncio.timeout(DEADLINE_S), self._changed:
            await self._changed.wait_for(
                lambda: self._taken_at is not None and self.waits > self._taken_at
            )


async def _first_of(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def wait_until(probe: Callable[[], T | None], what: str, deadline_s: float = DEADLINE_S) -> T:
    """Poll ``probe`` until it returns something true and return that; fail after the deadline.

    A probe may answer None for "not yet": what is returned is never None."""
    give_up = time.monotonic() + deadline_s
    while not (found := probe()):
        if time.monotonic() > give_up:
            raise AssertionError(f"still waiting after {deadline_s:.0f} s: {what}")
        time.sleep(_POLL_S)
    return found


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, deadline_s: float = DEADLINE_S
) -> T:
    """``wait_until`` for an async probe, without blocking the event loop. The deadline bounds
    the probes too: one that hangs fails the wait at the deadline instead of hanging it."""
    timer = asyncio.timeout(deadline_s)
    try:
        async with timer:
            while not (found := await probe()):
                await asyncio.sleep(_POLL_S)
    except TimeoutError:
        if not timer.expired():
            raise  # the probe's own timeout, not the deadline
        raise AssertionError(f"still waiting after {deadline_s:.0f} s: {what}") from None
    return found
