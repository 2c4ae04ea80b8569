"""Small HTTP helpers for the routes: bounded body reading, request ids, JSON responses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelyard.core.errors import InvalidRequest, PayloadTooLarge
from modelyard.core.events import StreamEvent
from modelyard.server.middleware import (
    EXCHANGE,
    Exchange,
    client_request_id,
    request_headers,
    request_id_of,
)
from modelyard.server.protocol import leaving


def exchange_of(request: Request) -> Exchange:
    """The request as the middleware opened it (its id, and where the route notes the model)."""
    found: Exchange | None = request.scope.get(EXCHANGE)
    if found is None:  # an app mounted without ``Front`` (never by ``create_app``)
        scope = request.scope
        headers = request_headers(scope)
        found = Exchange(request_id_of(scope), client_request_id(headers), headers)
        scope[EXCHANGE] = found
    return found


def request_id(request: Request) -> str:
    """The request's id (ours, fresh: see ``server.middleware``)."""
    return exchange_of(request).rid


async def read_json(request: Request, limit: int) -> Any:
    declared = exchange_of(request).headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared.decode()} bytes; the limit is {limit}")
    body = await _read_body(request.receive, limit)
    if not body:
        raise InvalidRequest("request body is empty; expected a JSON object", param="body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}", param="body") from exc


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The body's ``http.request`` messages, read from the server straight (most bodies are
    one message); a client that leaves first is Starlette's ``ClientDisconnect``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        if not message.get("more_body", False):
            return b"".join((*chunks, chunk)) if chunks else chunk
        chunks.append(chunk)


_EVENT_STREAM = b"text/event-stream; charset=utf-8"
# Response headers as the ASGI server takes them: (lowercase name, value) byte pairs.
RawHeaders = list[tuple[bytes, bytes]]
# What the responses below take: our headers by name, or already as byte pairs (a list then
# taken over: the response appends its own to it).
OwnHeaders = Mapping[str, str] | RawHeaders | None


class JSONBody(Response):
    """An encoded JSON body and our own headers, put together the short way.

    Every answer of the API is one of these. Starlette's general ``init_headers`` lowercases
    each name, encodes names and values through the codec registry by name and searches the
    list for content-length and content-type: about 2.5k instructions per header (callgrind),
    a tenth of the work metering adds to a request, whose limits send 7 headers. Here: the
    names must already be lowercase, as ASGI wants and as every name this server sends is,
    and must not be content-length or content-type; values are encoded as Starlette encodes
    them (latin-1, the same bytes as the default codec's fast path for ASCII). Headers given
    as byte pairs (``RawHeaders``: the answers' own, made so once per target or request) are
    taken as they are.
    """

    media_type = "application/json"

    def __init__(self, body: bytes, status: int = 200, headers: OwnHeaders = None) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        raw = own_headers(headers)
        if not (status < 200 or status in (204, 304)):
            raw.append((b"content-length", b"%d" % len(body)))
        raw.append((b"content-type", b"application/json"))
        self.raw_headers = raw


def own_headers(headers: OwnHeaders) -> RawHeaders:
    """Our headers as ASGI wants them, the short way (see ``JSONBody``): lowercase names,
    never content-length or content-type. Byte pairs are taken as they are (the list itself)."""
    if not headers:
        return []
    if isinstance(headers, list):
        return headers
    return [(name.encode(), header_value(value)) for name, value in headers.items()]


def header_value(value: str) -> bytes:
    """A header value as Starlette encodes it: latin-1 (for ASCII, the same bytes as the
    default codec's fast path)."""
    return value.encode() if value.isascii() else value.encode("latin-1")


class EventStream(Response):
    """A streamed answer: each frame sent as the iterator yields it; a client that leaves
    stops the iteration at once (so the upstream call is closed, not read to its end).

    Starlette's ``StreamingResponse`` watches for the client leaving in an anyio task group
    when the server speaks ASGI before 2.4, as uvicorn does: a cancel scope and a second task
    per stream, a sixth of the Python work of a short stream. Here the client leaving while
    the frames are still being sent cancels the task sending them; that cancellation (and only
    it) is taken back when it arrives. Our server tells of the leaving itself (the scope's
    ``modelyard.leave`` extension); under another server one plain task waits on ``receive``
    for ``http.disconnect``.
    """

    media_type = "text/event-stream"

    def __init__(self, frames: AsyncIterator[bytes], headers: OwnHeaders) -> None:
        self.status_code = 200
        self.background = None
        self.frames = frames
        raw = own_headers(headers)
        raw.append((b"content-type", _EVENT_STREAM))
        self.raw_headers = raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None  # an ASGI app runs in a task
        sending = True
        gone = False

        def left() -> None:
            nonlocal gone
            if sending:
                gone = True
                task.cancel()

        unwatch = _watch_leaving(scope, receive, left)
        try:
            await self._send_frames(send)
        except asyncio.CancelledError:
            if not gone or task.uncancel() > 0:  # not ours alone to take back
                raise
        except OSError:  # ASGI 2.4 servers raise this on a send to a client that left
            pass
        finally:
            sending = False
            unwatch()
            aclose = getattr(self.frames, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _send_frames(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for frame in self.frames:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _watch_leaving(scope: Scope, receive: Receive, left: Callable[[], None]) -> Callable[[], None]:
    """Have ``left`` called if the client leaves; returns what stops the watch. Our server
    tells the request itself (``server.protocol.Leaving``); under another server a task waits
    on ``receive`` for ``http.disconnect``."""
    notice = leaving(scope)
    if notice is not None:
        notice.callback = left

        def forget() -> None:
            notice.callback = None

        return forget

    def done(watch: asyncio.Future[None]) -> None:
        if not watch.cancelled() and watch.exception() is None:
            left()

    watch = asyncio.ensure_future(_until_disconnect(receive))
    watch.add_done_callback(done)

    def stop() -> None:
        watch.remove_done_callback(done)
        watch.cancel()

    return stop


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def joined(encode: Callable[[StreamEvent], bytes | None], batch: Iterable[StreamEvent]) -> bytes:
    """The frames of a batch of events (the events of one upstream read) as one write; empty
    when none of them makes a frame."""
    frames = [frame for event in batch if (frame := encode(event))]
    return frames[0] if len(frames) == 1 else b"".join(frames)


def json_response(body: bytes, status: int = 200, headers: OwnHeaders = None) -> Response:
    return JSONBody(body, status, headers)
