"""A stream's events come in batches, one per read from the upstream (``stream_batches``), so
the gateway relays and sends what arrived together as one; a failure later in a read comes
after the events before it."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import ModelyardError
from modelyard.core.events import Finished, StreamEvent, TextDelta
from modelyard.providers.base import CallContext, ProviderSettings
from modelyard.providers.openai_compatible.adapter import OpenAICompatibleProvider
from modelyard.providers.transport import Transport
from tests.fakes.gated_sse import ERROR, FIRST_READ, SECOND_READ, GatedUpstream


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    async with contextlib.AsyncExitStack() as stack:
        transport = Transport()
        stack.push_async_callback(transport.aclose)

        async def start(upstream: GatedUpstream) -> OpenAICompatibleProvider:
            served = upstream.serve()
            stack.push_async_callback(served.aclose)  # type: ignore[attr-defined]
            base = await anext(served)
            settings = ProviderSettings(name="up", type="openai_compatible", base_url=base)
            return OpenAICompatibleProvider(settings, transport)

        yield start


REQUEST = ChatRequest("m", [Message("user", (TextPart("hi"),))], stream=True)


def _texts(batch: list[StreamEvent]) -> list[str]:
    return [e.text for e in batch if isinstance(e, TextDelta)]


async def test_the_events_of_one_read_come_as_one_batch(serve: Any) -> None:
    upstream = GatedUpstream([FIRST_READ, SECOND_READ])
    provider = await serve(upstream)
    batches = provider.stream_batches(REQUEST, "m", CallContext("r1"))
    first = await anext(batches)
    assert _texts(first) == ["a", "b"]  # both events of the first write, together
    upstream.go.set()
    rest = [batch async for batch in batches]
    events = [e for batch in rest for e in batch]
    assert _texts(events) == ["c"] and isinstance(events[-1], Finished)
    assert all(rest)  # never an empty batch


async def test_events_one_by_one_are_the_batches_flattened(serve: Any) -> None:
    provider = await serve(GatedUpstream([FIRST_READ + SECOND_READ]))
    events = [e async for e in provider.stream(REQUEST, "m", CallContext("r1"))]
    assert _texts(events) == ["a", "b", "c"] and isinstance(events[-1], Finished)


async def test_an_error_later_in_a_read_comes_after_the_events_before_it(serve: Any) -> None:
    provider = await serve(GatedUpstream([FIRST_READ + ERROR]))
    batches = provider.stream_batches(REQUEST, "m", CallContext("r1"))
    assert _texts(await anext(batches)) == ["a", "b"]
    with pytest.raises(ModelyardError, match="the model overloaded"):
        await anext(batches)


async def test_a_stream_that_ends_at_its_last_event_leaves_nothing_to_finalize(serve: Any) -> None:
    """The reader stops at ``[DONE]`` without reading the body to its end; no async generator
    may be left for the loop's finalizer hook, which closes it through a thread-safe wakeup
    and a task of its own per stream."""
    provider = await serve(GatedUpstream([FIRST_READ + SECOND_READ]))
    hooks = sys.get_asyncgen_hooks()
    finalized: list[str] = []

    def finalizer(agen: Any) -> None:
        finalized.append(agen.ag_code.co_qualname)
        assert hooks.finalizer is not None
        hooks.finalizer(agen)

    sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
    try:
        events = [e async for e in provider.stream(REQUEST, "m", CallContext("r1"))]
        gc.collect()
    finally:
        sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=hooks.finalizer)
    assert isinstance(events[-1], Finished)
    assert finalized == []
