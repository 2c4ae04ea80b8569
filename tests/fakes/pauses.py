"""The fakes' waits (``slow-N``, ``trickle-N``), recorded as they end: a test asserts what a fake
waited for and that the answer came after it, instead of timing the call on the wall clock
(which proves nothing on a loaded machine and depends on it)."""

from __future__ import annotations

import asyncio
from types import ModuleType

import pytest

from tests.fakes import anthropic_faults, openai_faults

_MODULES: tuple[ModuleType, ...] = (openai_faults, anthropic_faults)


def record_pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every full pause a fake makes from now on, in seconds, appended when it is over."""
    seen: list[float] = []
    real = openai_faults.pause

    async def recording(seconds: float, closing: asyncio.Event) -> bool:
        full = await real(seconds, closing)
        if full:
            seen.append(seconds)
        return full

    for module in _MODULES:
        monkeypatch.setattr(module, "pause", recording)
    return seen
