"""Fault injection and special behaviours of the fake Gemini, chosen by the model name.

See the ``gemini_upstream`` module docstring for the list. Faults that replace the answer
(``fail-*``, ``slow-N``, ``hang``) run before one is built; faults that damage an answer
(``drop-mid-stream``, ``truncated-stream``, ``error-mid-stream``) are applied to its bytes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .gemini_responses import error_frame
from .gemini_wire import failure
from .openai_faults import Fault, _hang, _pieces, pause, split_retry_after, with_retry_after

_NUMBERED = re.compile(r"(?P<name>fail|slow|cached)-(?P<amount>\d+)")
_PLAIN = frozenset(
    {
        "hang", "drop-mid-stream", "truncated-stream", "error-mid-stream", "blocked-safety",
        "blocked-prompt",
    }
)  # fmt: skip
# A damaged stream first sends this many good chunks, so the client has already seen content.
_CHUNKS_BEFORE_FAULT = 2


def parse_fault(model: str) -> Fault | None:
    model = split_retry_after(model)[0]
    if model in _PLAIN:
        return Fault(model)
    match = _NUMBERED.fullmatch(model)
    if match is None:
        return None
    fault = Fault(match["name"], int(match["amount"]))
    if fault.name == "fail" and not 400 <= fault.amount <= 599:
        return None
    return fault


def cached_tokens(fault: Fault | None) -> int:
    return fault.amount if fault is not None and fault.name == "cached" else 0


async def preflight(
    fault: Fault | None, model: str, method: str, request: Request, closing: asyncio.Event
) -> Response | None:
    """Apply the faults that replace the answer; ``None`` means "answer normally now"."""
    if fault is None:
        return None
    if fault.name == "fail":
        key = request.headers.get("x-goog-api-key", "")
        wanted = split_retry_after(model)[1]
        # Google states a 429's delay in a RetryInfo detail; the test's delay replaces it.
        delay: str | None = "13s"
        if wanted is not None:
            delay = None if wanted.seconds is None else f"{wanted.seconds}s"
        return with_retry_after(failure(fault.amount, model, method, key, delay), wanted)
    if fault.name == "slow":
        return None if await pause(fault.amount / 1000, closing) else failure(500, model, "", "")
    if fault.name == "hang":
        return await _hang(request, closing)
    return None


def shape_stream(
    fault: Fault | None, frames: Sequence[bytes], media_type: str, closing: asyncio.Event
) -> Response:
    """Send the frames of a good stream, damaged the way ``fault`` asks."""
    name = fault.name if fault else ""
    keep = max(1, min(_CHUNKS_BEFORE_FAULT, len(frames) - 1))
    if name == "drop-mid-stream":
        return _stream(frames[:keep], media_type, closing, abort=True)
    if name == "truncated-stream":
        return _stream(frames[:keep], media_type, closing, abort=False)
    if name == "error-mid-stream":
        broken = [*frames[:keep], error_frame(500, "An internal error has occurred.", "INTERNAL")]
        return _stream(broken, media_type, closing, abort=False)
    return _stream(frames, media_type, closing, abort=False)


def shape_body(fault: Fault | None, payload: bytes) -> Response:
    """A JSON answer, or half of it on a connection that then drops."""
    if fault is not None and fault.name == "drop-mid-stream":
        half = payload[: len(payload) // 2]
        return StreamingResponse(
            _pieces([half], 0.0, None, abort=True), media_type="application/json"
        )
    return Response(payload, media_type="application/json")


def _stream(
    frames: Sequence[bytes], media_type: str, closing: asyncio.Event, *, abort: bool
) -> Response:
    return StreamingResponse(_pieces(frames, 0.0, closing, abort=abort), media_type=media_type)
