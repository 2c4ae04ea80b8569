"""The test suite's waits (``tests/waiting.py``): a wait fails at its deadline, never hangs."""

from __future__ import annotations

import asyncio

import pytest

from tests.waiting import DEADLINE_S, eventually


async def test_a_probe_that_hangs_fails_the_wait_at_its_deadline():
    async def hangs() -> bool:
        await asyncio.Event().wait()
        return True

    async with asyncio.timeout(DEADLINE_S):  # on the code before, the wait hung here
        with pytest.raises(AssertionError, match="still waiting after 0 s: the answer"):
            await eventually(hangs, "the answer", deadline_s=0.01)


async def test_a_probes_own_timeout_is_not_taken_for_the_deadline():
    async def times_out() -> bool:
        raise TimeoutError

    with pytest.raises(TimeoutError):
        await eventually(times_out, "the answer")


async def test_a_probe_that_answers_ends_the_wait_with_its_answer():
    answers = iter([None, None, "yes"])

    async def later() -> str | None:
        return next(answers)

    assert await eventually(later, "the answer") == "yes"
