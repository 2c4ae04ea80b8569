"""The chat endpoint every served dialect shares: the steps are the same, only the shapes differ.

Authenticate, read the bounded body, decode, hand the request to the pipeline (with the
request's headers for sticky routing), then a JSON body or an SSE stream; errors before the
first byte become the dialect's error response, after it the dialect's in-stream error frame.
The request id, the in-flight bound and the access log are the middleware's (``Front``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.errors import InternalError, ModelyardError
from modelyard.core.events import StreamEvent
from modelyard.protocols.headers import error_headers
from modelyard.server.http import (
    EventStream,
    RawHeaders,
    exchange_of,
    header_value,
    joined,
    json_response,
    own_headers,
    read_json,
)
from modelyard.server.middleware import Exchange
from modelyard.services.chat import Served
from modelyard.services.metering import Ticket
from modelyard.services.pipeline import INTERNAL, Caller, Streaming
from modelyard.services.root import Root
from modelyard.tenancy.keys import Principal, UnknownKey, bearer_token

log = logging.getLogger("modelyard.server")
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_RAW_SSE = tuple((name.encode(), value.encode()) for name, value in SSE_HEADERS.items())
_RAW_ROUTE = b"x-modelyard-route"


class StreamWriter(Protocol):
    def start(self) -> bytes: ...
    def encode(self, event: StreamEvent) -> bytes | None: ...
    def close(self) -> bytes: ...


def request_id_only(rid: bytes) -> RawHeaders:
    """The usual request id header, ``x-request-id``, as a byte pair (in a new list)."""
    return [(b"x-request-id", rid)]


@dataclass(frozen=True, slots=True)
class Dialect:
    """What one served API contributes to the shared endpoint."""

    path: str
    encode_result: Callable[[ChatResult, str], bytes]  # (result, requested model)
    stream_writer: Callable[[ChatRequest], StreamWriter]
    error_body: Callable[[ModelyardError, str], bytes]  # (error, request id)
    error_frame: Callable[[ModelyardError, str], bytes]
    # How the JSON body becomes a ``ChatRequest``; exactly one of the two is given (checked
    # when the dialect is made). ``decode``: from the body alone (OpenAI, Anthropic). Or
    # ``decode_request``: given the request too, for a dialect whose URL says what its body
    # does not (Gemini: the model and the method are in the path).
    decode: Callable[[Any], ChatRequest] | None = None
    decode_request: Callable[[Request, Any], ChatRequest] | None = None
    # Where the client's key is, when not in ``Authorization``/``x-api-key`` (Gemini's
    # ``x-goog-api-key`` or ``key=``); None: those two headers.
    credentials: Callable[[Request], str | None] | None = None
    # Request headers the dialect reads into the decoded request (the Messages API's betas).
    read_headers: Callable[[ChatRequest, Callable[[str], str | None]], None] | None = None
    # A request this dialect serves another way (the Messages API's MCP connector): its
    # answer, or None for the usual path. Called with the decoded JSON body.
    divert: Callable[[Request, Principal, Any], Awaitable[Response | None]] | None = None
    # The request id's headers, given the id encoded (ours: ASCII), as byte pairs in a new
    # list; ``x-request-id`` alone unless the dialect's clients read another name too.
    raw_ids: Callable[[bytes], RawHeaders] = request_id_only

    def __post_init__(self) -> None:
        if (self.decode is None) == (self.decode_request is None):
            raise ValueError(f"dialect {self.path}: give one of decode and decode_request")

    def id_headers(self, rid: str) -> dict[str, str]:
        """``raw_ids`` by name, for the answers whose headers are put together as a dict."""
        return {name.decode(): value.decode() for name, value in self.raw_ids(rid.encode())}


def state_of(request: Request) -> Root:
    root: Root = request.app.state.modelyard
    return root


async def authenticate(state: Root, request: Request, presented: str | None = None) -> Principal:
    """The caller's principal. A key of ours that this server does not hold yet (created a
    moment ago, elsewhere) is looked for in the store first, so it is served with its limits
    and counted from its first call, never refused or served as anonymous meanwhile.
    ``presented``: the key as the route found it; None: read from the usual headers."""
    if presented is None:
        exchange = exchange_of(request)
        presented = bearer_token(exchange.header("authorization"), exchange.header("x-api-key"))
    try:
        return state.keys.authenticate(presented, may_look_up=True)
    except UnknownKey:
        await state.keys_changed()
    return state.keys.authenticate(presented)


def error_response(dialect: Dialect, err: ModelyardError, rid: str) -> Response:
    headers = dialect.raw_ids(rid.encode())
    headers += own_headers(error_headers(err))
    return json_response(dialect.error_body(err, rid), err.status, headers)


def served_raw(
    dialect: Dialect, served: Served, rid: str, ticket: Ticket | None = None
) -> RawHeaders:
    """The headers of an answer, as byte pairs (a new list): the request id's, the ticket's
    (limits, cost, guardrails), then who served it. Only the ticket's and the route's are
    made per request; the target's are encoded once per target (``_target_headers``)."""
    headers = dialect.raw_ids(rid.encode())
    if ticket is not None:
        headers += ticket.raw_headers()
    headers += _target_headers(served.deployment, served.provider, served.model, served.attempts)
    if served.route is not None:
        headers.append((_RAW_ROUTE, header_value(served.route)))
    return headers


def served_headers(
    dialect: Dialect, served: Served, rid: str, ticket: Ticket | None = None
) -> dict[str, str]:
    """``served_raw`` by name, for the answers whose headers are put together as a dict."""
    pairs = served_raw(dialect, served, rid, ticket)
    return {name.decode(): value.decode("latin-1") for name, value in pairs}


@functools.lru_cache(maxsize=1024)
def _target_headers(
    deployment: str, provider: str, model: str, attempts: int
) -> tuple[tuple[bytes, bytes], ...]:
    """Who served an answer, encoded once for each target and count of attempts (a few per
    target): the names come from the config, so the values may need latin-1."""
    return (
        (b"x-modelyard-deployment", header_value(deployment)),
        (b"x-modelyard-provider", header_value(provider)),
        (b"x-modelyard-model", header_value(model)),
        (b"x-modelyard-attempts", b"%d" % attempts),
    )


async def chat_endpoint(dialect: Dialect, request: Request) -> Response:
    root = state_of(request)
    exchange = exchange_of(request)
    rid = exchange.rid
    current = root.current
    try:
        key = dialect.credentials(request) if dialect.credentials is not None else None
        principal = await authenticate(root, request, key)
        body = await read_json(request, current.max_body_bytes)
        if dialect.divert is not None:
            diverted = await dialect.divert(request, principal, body)
            if diverted is not None:
                return diverted
        if dialect.decode is not None:
            chat_request = dialect.decode(body)
        else:
            decode_request = dialect.decode_request
            assert decode_request is not None  # one of the two: ``Dialect.__post_init__``
            chat_request = decode_request(request, body)
        if dialect.read_headers is not None:
            dialect.read_headers(chat_request, exchange.header)
        exchange.model = chat_request.model
        caller = exchange.caller = Caller(principal, rid, dialect.path, headers=exchange.header)
        if chat_request.stream:
            streaming = await current.pipeline.stream(caller, chat_request)
            exchange.served = streaming.served
            exchange.route = streaming.served.route
            headers = served_raw(dialect, streaming.served, rid, streaming.ticket)
            frames = _frames(dialect, chat_request, streaming, rid)
            return SSEResponse(frames, streaming, exchange, headers)
        answer = await current.pipeline.complete(caller, chat_request)
        exchange.served = answer.served
        exchange.route = answer.served.route
        payload = dialect.encode_result(answer.result, chat_request.model)
        return json_response(payload, 200, served_raw(dialect, answer.served, rid, answer.ticket))
    except ModelyardError as err:
        return error_response(dialect, err, rid)


class SSEResponse(EventStream):
    """A pipeline stream's frames (``body``, made from ``streaming``); however the response
    ends (even unsent), the stream is closed, which finishes the call."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        streaming: Streaming,
        exchange: Exchange,
        headers: RawHeaders,
    ) -> None:
        """``headers``: taken over (the SSE headers are appended to them)."""
        headers += _RAW_SSE
        super().__init__(body, headers)
        self._streaming = streaming
        self._exchange = exchange

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._streaming.aclose()  # a client gone mid-stream: recorded as 499
            self._exchange.status = self._streaming.run.status


async def _frames(
    dialect: Dialect, chat_request: ChatRequest, streaming: Streaming, rid: str
) -> AsyncIterator[bytes]:
    writer = dialect.stream_writer(chat_request)
    try:
        opening = writer.start()
        if opening:
            yield opening
        async for batch in streaming.batches:  # the events of one upstream read: one write
            frames = joined(writer.encode, batch)
            if frames:
                yield frames
        yield writer.close()
    except ModelyardError as err:
        yield dialect.error_frame(err, rid)
    except Exception as exc:  # an after-first-byte bug must still end the stream with an error
        # One line per request; the traceback at debug level (Front's ``Failures`` logs the
        # traceback once per site for what reaches it; this one never does).
        log.error("request %s: stream failed: %s", rid, type(exc).__name__)
        log.debug("request %s: stream failed", rid, exc_info=exc)
        await streaming.aclose(INTERNAL)
        yield dialect.error_frame(InternalError("internal error while streaming"), rid)
