"""Fault injection for the fake OpenAI upstream, chosen by the requested model name.

See the ``openai_upstream`` module docstring for the list of names. Faults that decide the whole
response (``fail-*``, ``slow-N``, ``hang``, ``malformed-json``) run before an answer is built;
faults that damage a response (``drop-mid-stream``, ``truncated-sse``, ``error-mid-stream``,
``trickle-N``) are applied to the answer's bytes.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .openai_stream import DONE_FRAME, error_frame
from .openai_wire import (
    error_response,
    invalid_api_key,
    missing_api_key,
    model_not_found,
    overloaded,
    rate_limited,
    server_error,
)

_FAULT = re.compile(r"(?P<name>fail|slow|trickle)-(?P<amount>\d+)")
# ``fail-NNN-retry-S`` answers as ``fail-NNN`` with ``retry-after: S``; ``fail-NNN-noretry``
# without any delay (the vendor's own default, if it has one, is replaced or removed).
_RETRY_SUFFIX = re.compile(r"(?P<base>fail-\d{3})-(?:retry-(?P<seconds>\d+)|noretry)")
_PLAIN_FAULTS = frozenset(
    {"hang", "drop-mid-stream", "truncated-sse", "error-mid-stream", "malformed-json"}
)
_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
# How many frames of a good stream go out before a mid-stream fault: the role chunk and two
# content chunks, so a client has already yielded real content when the stream breaks
# (``truncated-sse`` sends the last of them only half).
_FRAMES_BEFORE_FAULT = 3


class AbortConnection(Exception):
    """Raised after a response has started so that uvicorn drops the connection at once."""


class QuietAborts(logging.Filter):
    """Keeps uvicorn from logging a traceback for every connection the fake drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not _is_abort(error)


def _is_abort(error: BaseException | None) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return all(_is_abort(inner) for inner in error.exceptions)
    return isinstance(error, AbortConnection)


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    amount: int = 0


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """A delay the test wants a failure to carry: ``seconds``, or none at all."""

    seconds: int | None


def split_retry_after(model: str) -> tuple[str, RetryAfter | None]:
    """``("fail-429", RetryAfter(3))`` from ``fail-429-retry-3``; other models unchanged."""
    match = _RETRY_SUFFIX.fullmatch(model)
    if match is None:
        return model, None
    seconds = match["seconds"]
    return match["base"], RetryAfter(int(seconds) if seconds is not None else None)


def with_retry_after(response: Response, wanted: RetryAfter | None) -> Response:
    """``response`` with its ``retry-after`` header replaced as ``wanted`` says."""
    if wanted is None:
        return response
    if "retry-after" in response.headers:
        del response.headers["retry-after"]
    if wanted.seconds is not None:
        response.headers["retry-after"] = str(wanted.seconds)
    return response


def parse_fault(model: object) -> Fault | None:
    if not isinstance(model, str):
        return None
    model = split_retry_after(model)[0]
    if model in _PLAIN_FAULTS:
        return Fault(model)
    match = _FAULT.fullmatch(model)
    if match is None:
        return None
    fault = Fault(match["name"], int(match["amount"]))
    if fault.name == "fail" and not 400 <= fault.amount <= 599:
        return None
    return fault


async def pause(seconds: float, closing: asyncio.Event) -> bool:
    """Sleep, but wake early when the fake is stopping; True when the full time passed."""
    try:
        await asyncio.wait_for(closing.wait(), timeout=seconds)
    except TimeoutError:
        return True
    return False


async def preflight(
    fault: Fault | None, model: str, request: Request, closing: asyncio.Event, *, stream: bool
) -> Response | None:
    """Apply the faults that replace the answer; ``None`` means "answer normally now"."""
    if fault is None:
        return None
    if fault.name == "fail":
        answer = failure(fault.amount, model, request.headers.get("authorization", ""))
        return with_retry_after(answer, split_retry_after(model)[1])
    if fault.name == "slow":
        return None if await pause(fault.amount / 1000, closing) else server_error()
    if fault.name == "hang":
        return await _hang(request, closing)
    if fault.name == "malformed-json":
        if stream:
            bad = b'data: {"id": "chatcmpl-malformed", "object": chat.completion.chunk}\n\n'
            return Response(bad + DONE_FRAME, media_type="text/event-stream")
        return Response(
            b'{"id": "chatcmpl-malformed", "object": chat.completion}',
            media_type="application/json",
        )
    return None


def failure(status: int, model: str, authorization: str) -> Response:
    """The real API's error response for ``status`` (a generic one for unusual statuses)."""
    if status == 400:
        return error_response(
            400,
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got "
            "3 instead.",
            "invalid_request_error",
            param="temperature",
            code="decimal_above_max_value",
        )
    if status == 401:
        provided = authorization.removeprefix("Bearer ").strip()
        return invalid_api_key(provided) if provided else missing_api_key()
    if status == 403:
        return error_response(
            403,
            "Country, region, or territory not supported",
            "request_forbidden",
            code="unsupported_country_region_territory",
        )
    if status == 404:
        return model_not_found(model)
    if status == 429:
        return rate_limited(model)
    if status == 503:
        return overloaded()
    if status >= 500:
        return server_error(status)
    return error_response(status, f"Simulated failure {status}.", "invalid_request_error")


def shape_stream(fault: Fault | None, frames: Sequence[bytes], closing: asyncio.Event) -> Response:
    """Send the frames of a good stream, damaged the way ``fault`` asks."""
    name = fault.name if fault else ""
    keep = max(1, min(_FRAMES_BEFORE_FAULT, len(frames) - 2))
    interval = fault.amount / 1000 if fault and fault.name == "trickle" else 0.0
    if name == "drop-mid-stream":
        return _sse(frames[:keep], interval, closing, abort=True)
    if name == "truncated-sse":
        cut = frames[keep - 1]
        return _sse([*frames[: keep - 1], cut[: len(cut) // 2]], interval, closing, abort=True)
    if name == "error-mid-stream":
        broken = [*frames[:keep], error_frame(_SERVER_ERROR)]
        return _sse(broken, interval, closing, abort=False)
    return _sse(frames, interval, closing, abort=False)


def shape_body(fault: Fault | None, payload: bytes, headers: Mapping[str, str]) -> Response:
    """A JSON answer, or half of it on a connection that then drops."""
    if fault is not None and fault.name in ("drop-mid-stream", "truncated-sse"):
        half = payload[: len(payload) // 2]
        return StreamingResponse(
            _pieces([half], 0.0, None, abort=True), headers=headers, media_type="application/json"
        )
    return Response(payload, headers=headers, media_type="application/json")


def _sse(
    frames: Sequence[bytes], interval: float, closing: asyncio.Event, *, abort: bool
) -> Response:
    return StreamingResponse(
        _pieces(frames, interval, closing, abort=abort), media_type="text/event-stream"
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


async def _hang(request: Request, closing: asyncio.Event) -> Response:
    """Answer nothing until the client goes away (or the fake stops, then a 500)."""
    disconnected = asyncio.ensure_future(_wait_for_disconnect(request))
    stopping = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait({disconnected, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        disconnected.cancel()
        stopping.cancel()
    # Sent to a closed connection this goes nowhere; at shutdown it releases a waiting client.
    return server_error()


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
