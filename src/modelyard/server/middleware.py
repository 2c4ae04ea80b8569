"""The one middleware: request id, in-flight bound, access log, for every HTTP request.

Pure ASGI (Starlette's ``BaseHTTPMiddleware`` runs each response through extra tasks and
queues: slow on the hot path). It gives the request a fresh id of ours (the ledger's, the
logs' and the errors'; a caller's sane ``x-request-id`` or ``x-client-request-id`` is kept as
its correlation id, sent back in ``x-client-request-id`` and logged, never reused as ours: it
could repeat) and hands both to the routes in an ``Exchange`` in the scope, where a route also
notes the model asked for and, for a stream, how the stream really ended. Requests beyond
``server.max_in_flight`` get a 429 ``gateway_busy`` in the dialect of the path; the health
probes are never bounded (a busy server is alive and ready). Anything a route raises ends
here: a 500 in the path's dialect with the request id, and one short log line (``Failures``).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.core.errors import InternalError, ModelyardError, QueueFull
from modelyard.protocols.anthropic import errors as anthropic_errors
from modelyard.protocols.gemini import errors as gemini_errors
from modelyard.protocols.headers import error_headers
from modelyard.protocols.openai import errors as openai_errors
from modelyard.server.access_log import AccessLog
from modelyard.services.chat import Served
from modelyard.services.observing import OTHER
from modelyard.services.pipeline import Caller
from modelyard.services.root import Root

if TYPE_CHECKING:  # metrics and traces: imported when the config turns them on
    from opentelemetry.trace import Span

    from modelyard.services.observed import Metrics, Observation, Tracing

log = logging.getLogger("modelyard.server")
EXCHANGE = "modelyard.exchange"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CLIENT_ID = b"x-client-request-id"
_UNBOUNDED = frozenset({"/healthz", "/readyz"})
_MESSAGES = "/v1/messages"


class Exchange:
    """One HTTP request as the middleware and the route share it."""

    __slots__ = (
        "caller", "client_rid", "headers", "model", "rid", "route", "sent", "served", "status"
    )  # fmt: skip

    def __init__(
        self, rid: str, client_rid: str | None = None, headers: Mapping[bytes, bytes] | None = None
    ) -> None:
        self.rid = rid
        self.client_rid = client_rid  # the caller's own id for this request, when it sent one
        # The request's headers by lowercase name, read once (``request_headers``).
        self.headers: Mapping[bytes, bytes] = headers if headers is not None else {}
        self.model: str | None = None
        self.status: int | None = None  # set by a route whose final status is not the header's
        self.sent = 0  # the status of the response once it has started
        self.route: str | None = None  # a learned/semantic strategy's decision, when there was one
        self.caller: Caller | None = None  # a model call's caller and who served it (logs)
        self.served: Served | None = None

    def header(self, name: str) -> str | None:
        """The request header ``name`` (lowercase), or None."""
        value = self.headers.get(name.encode("latin-1"))
        return None if value is None else value.decode("latin-1")


def fresh_request_id() -> str:
    """``req_`` + the time in ms (11 hex digits) + 52 random bits (13): as unique as before,
    and in time order, so the ledger's unique index takes each insert at its right edge
    (random ids made it the dearest part of an insert; revision 0013)."""
    return f"req_{time.time_ns() // 1_000_000:011x}{int.from_bytes(os.urandom(7)) >> 4:013x}"


def request_headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by name, in one pass: ASGI servers give the names in lowercase;
    of a repeated header the first counts, as with Starlette's ``Headers.get``. ASGI allows
    any iterable of name-value pairs; the servers give a list, read without a copy."""
    # The ``try`` shares its line with its body: on a line of its own it is one more bytecode
    # (a NOP) on every request (``bench.pathcost``).
    try: return dict(reversed(scope["headers"]))  # noqa: E701  # fmt: skip
    except TypeError:  # not reversible (an iterator, ...): read once, kept for later readers
        headers = scope["headers"] = list(scope["headers"])
        return dict(reversed(headers))


def client_request_id(headers: Mapping[bytes, bytes]) -> str | None:
    """The caller's ``x-request-id`` (else its ``x-client-request-id``) when it is sane."""
    raw = headers.get(b"x-request-id") or headers.get(_CLIENT_ID)
    if raw is None:
        return None
    given = raw.decode("latin-1")
    return given if _REQUEST_ID_RE.match(given) else None


def request_id_of(scope: Scope) -> str:
    """Always a fresh id of ours: the ledger's, the logs' and the errors' (a client's id could
    repeat, so it only travels along, in ``Exchange.client_rid``)."""
    return fresh_request_id()


class Front:
    """Wraps the app; ``root_of`` gives the composition root once the app has started."""

    def __init__(
        self,
        app: ASGIApp,
        root_of: Callable[[], Root],
        metrics: Metrics | None = None,
        access: AccessLog | None = None,
        direct: Mapping[str, Route] | None = None,
    ) -> None:
        self.app = app
        self.root_of = root_of
        self.in_flight = 0
        self.failures = Failures()
        self.access = access or AccessLog()
        # The served APIs' POST routes without path parameters, by path: called straight
        # (``_endpoint``), not through Starlette's router and its exception layers.
        self.direct: Mapping[str, Route] = direct or {}
        if metrics is not None:  # the in-flight gauge is this count, read at each flush
            metrics.in_flight_of = self._in_flight

    def _in_flight(self) -> int:
        return self.in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = request_headers(scope)
        exchange = Exchange(fresh_request_id(), client_request_id(headers), headers)
        scope[EXCHANGE] = exchange
        path: str = scope["path"]
        if path in _UNBOUNDED:
            await self._guarded(scope, receive, send, exchange)
            return
        root = self.root_of()
        settings = root.current.settings.server
        observation = root.observation
        if self.in_flight >= settings.max_in_flight:
            await _busy(settings.max_in_flight, path, exchange, send)
            self.log_access(settings.access_log, exchange, path, 429, started, False)
            if observation is not None and observation.metrics is not None:
                observation.metrics.refusals.labels("in_flight").inc()
                observation.metrics.http(path, 429, time.perf_counter() - started)
            return
        self.in_flight += 1
        # Observability on costs no wrapper coroutine and no second ``send`` closure: the
        # status the client got is ``_guarded``'s note (``exchange.sent``).
        span: Span | None = None
        token: object = None
        if observation is not None and observation.tracing is not None:
            span, token = _server_span(observation.tracing, observation, scope, exchange)
        route = self.direct.get(path) if scope["method"] == "POST" else None
        try:
            await self._guarded(scope, receive, send, exchange, route)
        finally:
            self.in_flight -= 1
            final = exchange.status or exchange.sent or 500
            # logged first: while the server span is current, the line carries its trace id
            self.log_access(settings.access_log, exchange, path, final, started, span is not None)
            if observation is not None:
                metrics = observation.metrics
                if metrics is not None:  # ``Metrics.http``, inlined: once per request
                    # the route called directly, else the router's match: its template
                    matched = route or scope.get("route")
                    template = matched.path if matched is not None else ""
                    seconds = time.perf_counter() - started
                    metrics.http_records.append((template, final, seconds))
                if span is not None:
                    _traced(observation, scope, final, span, token)

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, ex: Exchange, route: Route | None = None
    ) -> None:
        """The app, with the response's status noted; anything it raises is the boundary's
        business: a 500 in the path's dialect (if nothing was sent yet) and one short line."""

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                ex.sent = message["status"]
                if ex.client_rid is not None:
                    message["headers"] = [*message["headers"], (_CLIENT_ID, ex.client_rid.encode())]
            await send(message)

        try:
            if route is None:
                await self.app(scope, receive, noting)
            else:
                await _endpoint(route, scope, receive, noting)
        except Exception as exc:  # noqa: BLE001  # the last boundary: answered and logged here
            self.failures.log(exc, ex.rid, scope["path"])
            if not ex.sent:
                err = InternalError(f"internal error (request id {ex.rid})")
                await send_error(err, scope["path"], ex, send)
            ex.status = ex.status or 500

    def log_access(
        self,
        enabled: bool,
        exchange: Exchange,
        path: str,
        status: int,
        started: float,
        traced: bool,
    ) -> None:
        if enabled:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.access.add(exchange, path, status, elapsed_ms, traced)


async def _endpoint(route: Route, scope: Scope, receive: Receive, send: Send) -> None:
    """``route``'s endpoint, called as Starlette's router would (the scope's ``route``,
    ``endpoint`` and ``path_params`` set), without the router's walk over every route and the
    two exception layers between: an exception reaches ``Front._guarded``, as it would."""
    scope["route"] = route
    scope["endpoint"] = route.endpoint
    scope["path_params"] = {}
    response = await route.endpoint(Request(scope, receive, send))
    await response(scope, receive, send)


class Failures:
    """Logs an unexpected exception as one short line: its type, where it was raised and the
    request id. The traceback is logged the first time a site is seen (type, file and line),
    and at debug level every time: a bug hit by every request must not write kilobytes each."""

    def __init__(self, limit: int = 256) -> None:
        self._seen: set[tuple[str, str, int]] = set()
        self._limit = limit

    def log(self, exc: BaseException, rid: str, path: str) -> None:
        frame = exc.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        file, line = (frame.tb_frame.f_code.co_filename, frame.tb_lineno) if frame else ("?", 0)
        site = (type(exc).__name__, file, line)
        first = site not in self._seen and len(self._seen) < self._limit
        if first:
            self._seen.add(site)
        log.error(
            "request %s %s failed: %s at %s:%d%s",
            rid,
            _clip(path),
            site[0],
            file,
            line,
            " (traceback logged once per site)" if first else "",
            exc_info=exc if first else None,
        )
        if not first:
            log.debug("request %s: traceback", rid, exc_info=exc)


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


async def _busy(limit: int, path: str, exchange: Exchange, send: Send) -> None:
    err = QueueFull(
        f"the gateway is at its limit of {limit} requests in flight; retry shortly",
        code="gateway_busy",
        retry_after=1.0,
    )
    await send_error(err, path, exchange, send)


async def send_error(err: ModelyardError, path: str, exchange: Exchange, send: Send) -> None:
    """``err`` as the whole response, in the dialect of ``path``."""
    body, headers = error_in_dialect(err, path, exchange.rid)
    raw: list[tuple[bytes, bytes]] = [(k.encode(), v.encode()) for k, v in headers.items()]
    if exchange.client_rid is not None:
        raw.append((_CLIENT_ID, exchange.client_rid.encode()))
    raw += [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": err.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def is_anthropic(path: str) -> bool:
    """The Messages API's routes (``/v1/messages`` and under it) answer in Anthropic's shape."""
    return path.startswith(_MESSAGES)


def is_gemini(path: str) -> bool:
    """The Gemini API's routes: all of ``/v1beta``, and ``/v1/models/{model}:{method}``."""
    return path.startswith("/v1beta/") or (path.startswith("/v1/models/") and ":" in path)


def error_in_dialect(err: ModelyardError, path: str, rid: str) -> tuple[bytes, dict[str, str]]:
    """The error body for ``path``'s dialect and its headers (request id, Retry-After)."""
    headers = {"x-request-id": rid, **error_headers(err)}
    if is_anthropic(path):
        headers["request-id"] = rid  # the header Anthropic's SDKs read as the request id
        return anthropic_errors.error_body(err, rid), headers
    if is_gemini(path):
        return gemini_errors.error_body(err), headers
    return openai_errors.error_body(err), headers


def _server_span(
    tracing: Tracing, observation: Observation, scope: Scope, exchange: Exchange
) -> tuple[Span, object]:
    """The request's server span (tracing on), named by its path when that is a route."""
    route = observation.route_of(scope["path"])
    name = f"{scope['method']} {route}" if route != OTHER else scope["method"]
    span, token = tracing.server_span(name, scope["headers"])
    span.set_attribute("http.route", route)
    span.set_attribute("modelyard.request_id", exchange.rid)
    return span, token


def _traced(observation: Observation, scope: Scope, status: int, span: Span, token: object) -> None:
    """The request's server span ends with the status the client got, renamed by the route
    the router matched."""
    matched = scope.get("route")
    tracing = observation.tracing
    if tracing is not None:
        template = observation.route_of(matched.path) if matched is not None else OTHER
        if template != observation.route_of(scope["path"]):
            span.update_name(f"{scope['method']} {template}")
            span.set_attribute("http.route", template)
        tracing.end_server_span(span, token, status)
