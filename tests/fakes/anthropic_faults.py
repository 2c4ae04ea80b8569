"""Fault injection for the fake Anthropic upstream, chosen by the requested model name.

See the ``anthropic_upstream`` module docstring for the list. ``fail-*``, ``slow-N`` and ``hang``
decide the whole response before an answer is built; ``drop-mid-stream``, ``error-mid-stream``,
``no-message-stop`` and ``trickle-N`` damage a good answer's bytes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .anthropic_stream import error_event
from .anthropic_wire import error_response, failure
from .openai_faults import AbortConnection, pause, split_retry_after, with_retry_after

_FAULT = re.compile(r"(?P<name>fail|slow|trickle)-(?P<amount>\d+)")
_PLAIN = frozenset({"hang", "drop-mid-stream", "error-mid-stream", "no-message-stop"})
# message_start, the first block's start, ping and two deltas: real content has gone out.
_EVENTS_BEFORE_FAULT = 5


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    amount: int = 0


def parse_fault(model: object) -> Fault | None:
    if not isinstance(model, str):
        return None
    model = split_retry_after(model)[0]
    if model in _PLAIN:
        return Fault(model)
    match = _FAULT.fullmatch(model)
    if match is None:
        return None
    fault = Fault(match["name"], int(match["amount"]))
    if fault.name == "fail" and not 400 <= fault.amount <= 599:
        return None
    return fault


async def preflight(
    fault: Fault | None, model: str, request: Request, closing: asyncio.Event
) -> Response | None:
    """Apply the faults that replace the answer; ``None`` means "answer normally now"."""
    if fault is None:
        return None
    if fault.name == "fail":
        return with_retry_after(failure(fault.amount, model), split_retry_after(model)[1])
    if fault.name == "slow":
        return None if await pause(fault.amount / 1000, closing) else _internal()
    if fault.name == "hang":
        disconnected = asyncio.ensure_future(_wait_for_disconnect(request))
        stopping = asyncio.ensure_future(closing.wait())
        try:
            await asyncio.wait({disconnected, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            disconnected.cancel()
            stopping.cancel()
        return _internal()
    return None


def shape_stream(
    fault: Fault | None, events: Sequence[bytes], closing: asyncio.Event, request_id: str
) -> Response:
    name = fault.name if fault else ""
    keep = min(_EVENTS_BEFORE_FAULT, len(events) - 2)
    interval = fault.amount / 1000 if fault and fault.name == "trickle" else 0.0
    if name == "drop-mid-stream":
        return _sse(events[:keep], interval, closing, abort=True)
    if name == "error-mid-stream":
        broken = [*events[:keep], error_event("overloaded_error", "Overloaded", request_id)]
        return _sse(broken, interval, closing, abort=False)
    if name == "no-message-stop":
        return _sse(events[:-1], interval, closing, abort=False)
    return _sse(events, interval, closing, abort=False)


def shape_body(fault: Fault | None, payload: bytes) -> Response:
    if fault is not None and fault.name == "drop-mid-stream":
        pieces = _pieces([payload[: len(payload) // 2]], 0.0, None, abort=True)
        return StreamingResponse(pieces, media_type="application/json")
    if fault is not None and fault.name == "error-mid-stream":
        return failure(529, "")  # a whole answer cannot break halfway: it fails outright
    return Response(payload, media_type="application/json")


def _internal() -> Response:
    return error_response(500, "Internal server error")


def _sse(
    events: Sequence[bytes], interval: float, closing: asyncio.Event, *, abort: bool
) -> Response:
    return StreamingResponse(
        _pieces(events, interval, closing, abort=abort),
        media_type="text/event-stream; charset=utf-8",
        headers={"cache-control": "no-cache"},
    )


async def _pieces(
    pieces: Sequence[bytes], interval: float, closing: asyncio.Event | None, *, abort: bool
) -> AsyncIterator[bytes]:
    for position, piece in enumerate(pieces):
        if position and interval and closing is not None and not await pause(interval, closing):
            raise AbortConnection
        yield piece
    if abort:
        raise AbortConnection


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
