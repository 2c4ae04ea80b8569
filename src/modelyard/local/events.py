"""What a chat job running on an inference thread tells the event loop, and how.

A job speaks in core stream events (``TextDelta``, ``ToolCallDelta``, ``Finished`` per choice,
one ``UsageReport`` at the end), the same ones every provider emits and ``protocols.openai``
encodes; only a failure, which a provider raises instead, travels here as an event across the
thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

from modelyard.core.errors import ModelyardError
from modelyard.core.events import Finished, TextDelta, ToolCallDelta, UsageReport


@dataclass(frozen=True)
class GenerationFailed:
    error: ModelyardError


ChatEvent = TextDelta | ToolCallDelta | Finished | UsageReport | GenerationFailed


class ChatRun:
    """A chat job as the event loop sees it: a stream of events and a way to stop it."""

    def __init__(self, events: asyncio.Queue[ChatEvent], cancel: threading.Event) -> None:
        self._events = events
        self._cancel = cancel

    async def next_event(self) -> ChatEvent:
        return await self._events.get()

    def cancel(self) -> None:
        """Stop generating at the next token; the thread then frees the model."""
        self._cancel.set()


def call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> bool:
    """Run ``callback`` on ``loop`` from another thread; False when the loop is already closed."""
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:
        # The loop is closed: the process is shutting down and nobody is listening any more.
        return False
    return True
