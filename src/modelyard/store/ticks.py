"""When a background loop runs its next round: a ``Tick`` waits for it.

The ledger's and the shadow records' writers and the key refresher each loop "wait for the next
round, or for an early wake-up; do the round". Production waits ``every(interval_s)``; a test
passes a tick it fires itself, so it can say "run one round now" and know when the round is over
instead of sleeping and hoping the machine was fast enough.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

Tick = Callable[[asyncio.Event], Awaitable[None]]
"""Returns when the next round is due or when ``wake`` is set, whichever comes first."""


def every(interval_s: float) -> Tick:
    """Due ``interval_s`` seconds (of the event loop's clock) after the wait began."""

    async def tick(wake: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await wake.wait()

    return tick
