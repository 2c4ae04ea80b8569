"""A scripted model (``FakeOpenAI.script``) that holds every call until the test releases it.

What ``slow-N`` does with a fixed wait, this does with an event: a test that needs calls under
way at the same time (a concurrency bound full, a stream in flight) waits until they have
arrived (``wait_for_calls``), does what it must while they are held, then ``release``s them.
Nothing depends on how fast the machine is: a call cannot end before it is released.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.openai_chat import build_answer, completion_body
from tests.fakes.openai_wire import IdFactory
from tests.waiting import DEADLINE_S


class HeldAnswers:
    """A script handler: each call waits for ``release``, then gets the fake's usual answer.

    The fake serves on one event loop (its thread); the test runs in another thread, so the
    arrivals are counted under a ``threading.Condition`` and the release crosses over with
    ``call_soon_threadsafe``. A call held past ``DEADLINE_S`` fails rather than hangs."""

    def __init__(self) -> None:
        self._arrived = threading.Condition()
        self.calls = 0
        self._released = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: asyncio.Event | None = None
        self._ids = IdFactory()

    async def __call__(self, request: Request, body: dict[str, Any]) -> Response:
        with self._arrived:
            if self._open is None:  # made once, on the fake's loop, before any wait
                self._loop, self._open = asyncio.get_running_loop(), asyncio.Event()
                if self._released:
                    self._open.set()
            self.calls += 1
            self._arrived.notify_all()
        async with asyncio.timeout(DEADLINE_S):
            await self._open.wait()
        return JSONResponse(completion_body(build_answer(body, self._ids)))

    def wait_for_calls(self, count: int) -> None:
        """Return once ``count`` calls in all have arrived (and are held)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: self.calls >= count, DEADLINE_S):
                raise AssertionError(f"{self.calls} held calls after {DEADLINE_S:.0f} s: {count}")

    def release(self) -> None:
        """Let every held call, and every later one, answer."""
        with self._arrived:
            self._released = True
            loop, opened = self._loop, self._open
        if loop is not None and opened is not None:
            loop.call_soon_threadsafe(opened.set)
