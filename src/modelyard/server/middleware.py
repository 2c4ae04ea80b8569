"""The one middleware: request id, in-flight bound, access log, for every HTTP request.

Pure ASGI (Starlette's ``BaseHTTPMiddleware`` runs each response through extra tasks and
queues: slow on the hot path). It picks the request id once (the caller's ``x-request-id``
when sane, else a fresh one) and hands it to the routes in an ``Exchange`` in the scope, where
a route also notes the model asked for and, for a stream, how the stream really ended.
Requests beyond ``server.max_in_flight`` get a 429 ``gateway_busy`` in the dialect of the path;
the health probes are never bounded (a busy server is alive and ready).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.core.errors import ModelyardError, QueueFull
from modelyard.protocols.anthropic import errors as anthropic_errors
from modelyard.protocols.headers import error_headers
from modelyard.protocols.openai import errors as openai_errors
from modelyard.services.chat import Served
from modelyard.services.observed import OTHER, Observation
from modelyard.services.pipeline import Caller
from modelyard.services.root import Root

access_log = logging.getLogger("modelyard.access")
EXCHANGE = "modelyard.exchange"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_UNBOUNDED = frozenset({"/healthz", "/readyz"})
_MESSAGES = "/v1/messages"


class Exchange:
    """One HTTP request as the middleware and the route share it."""

    __slots__ = ("caller", "model", "rid", "served", "status")

    def __init__(self, rid: str) -> None:
        self.rid = rid
        self.model: str | None = None
        self.status: int | None = None  # set by a route whose final status is not the header's
        self.caller: Caller | None = None  # a model call's caller and who served it (logs)
        self.served: Served | None = None


def fresh_request_id() -> str:
    return "req_" + os.urandom(12).hex()


def request_id_of(scope: Scope) -> str:
    """The caller's ``x-request-id`` when it is sane, else a fresh one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = value.decode("latin-1")
            return given if _REQUEST_ID_RE.match(given) else fresh_request_id()
    return fresh_request_id()


class Front:
    """Wraps the app; ``root_of`` gives the composition root once the app has started."""

    def __init__(self, app: ASGIApp, root_of: Callable[[], Root]) -> None:
        self.app = app
        self.root_of = root_of
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        exchange = Exchange(request_id_of(scope))
        scope[EXCHANGE] = exchange
        path: str = scope["path"]
        if path in _UNBOUNDED:
            await self.app(scope, receive, send)
            return
        root = self.root_of()
        settings = root.current.settings.server
        observation = root.observation
        if self.in_flight >= settings.max_in_flight:
            await _busy(settings.max_in_flight, path, exchange.rid, send)
            self.log_access(settings.access_log, exchange, path, 429, started)
            if observation is not None and observation.metrics is not None:
                observation.metrics.refusals.labels("in_flight").inc()
                observation.metrics.http(path, 429, time.perf_counter() - started)
            return
        self.in_flight += 1
        try:
            if observation is not None:
                await observed(self, scope, receive, send, exchange, started, observation)
            elif not (settings.access_log and access_log.isEnabledFor(logging.INFO)):
                await self.app(scope, receive, send)  # nothing to note: no wrapper
            else:
                await self._logged(scope, receive, send, exchange, started)
        finally:
            self.in_flight -= 1

    async def _logged(
        self, scope: Scope, receive: Receive, send: Send, exchange: Exchange, started: float
    ) -> None:
        status = 500  # what the client sees if the app fails before it answers

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            self.log_access(True, exchange, scope["path"], exchange.status or status, started)

    @staticmethod
    def log_access(
        enabled: bool, exchange: Exchange, path: str, status: int, started: float
    ) -> None:
        if enabled and access_log.isEnabledFor(logging.INFO):
            elapsed_ms = (time.perf_counter() - started) * 1000
            model = exchange.model or "-"
            access_log.info(
                "%s %s %d %.1fms model=%s",
                exchange.rid,
                path,
                status,
                elapsed_ms,
                model,
                extra=_access_fields(exchange, path, status, elapsed_ms),
            )


def _access_fields(
    exchange: Exchange, path: str, status: int, elapsed_ms: float
) -> dict[str, object]:
    """The access line's facts, for the JSON log format (``observability.logs.format``)."""
    fields: dict[str, object] = {
        "request_id": exchange.rid,
        "route": path,
        "status": status,
        "duration_ms": round(elapsed_ms, 3),
        "model": exchange.model,
    }
    caller, served = exchange.caller, exchange.served
    if caller is not None:
        fields["key_id"] = caller.principal.key_id
        fields["project"] = caller.principal.project_id
    if served is not None:
        fields["deployment"] = served.deployment
        fields["provider"] = served.provider
        fields["attempts"] = served.attempts
    return fields


async def _busy(limit: int, path: str, rid: str, send: Send) -> None:
    err = QueueFull(
        f"the gateway is at its limit of {limit} requests in flight; retry shortly",
        code="gateway_busy",
        retry_after=1.0,
    )
    headers = {"x-request-id": rid, **error_headers(err)}
    body = _error_body(err, path, rid, headers)
    raw: list[tuple[bytes, bytes]] = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw += [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": err.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _error_body(err: ModelyardError, path: str, rid: str, headers: dict[str, Any]) -> bytes:
    if path.startswith(_MESSAGES):
        headers["request-id"] = rid  # the header Anthropic's SDKs read as the request id
        return anthropic_errors.error_body(err, rid)
    return openai_errors.error_body(err)


async def observed(
    front: Front,
    scope: Scope,
    receive: Receive,
    send: Send,
    exchange: Exchange,
    started: float,
    observation: Observation,
) -> None:
    """The request with metrics and a server span (observability on): the status the client
    got, the whole duration (a stream's end included), in flight while it runs."""
    status = 500
    path: str = scope["path"]
    route = observation.route_of(path)

    async def noting(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    metrics, tracing = observation.metrics, observation.tracing
    span = token = None
    if tracing is not None:
        name = f"{scope['method']} {route}" if route != OTHER else scope["method"]
        span, token = tracing.server_span(name, scope["headers"])
        span.set_attribute("http.route", route)
        span.set_attribute("modelyard.request_id", exchange.rid)
    if metrics is not None:
        metrics.active += 1
    try:
        await front.app(scope, receive, noting)
    finally:
        final = exchange.status or status
        matched = scope.get("route")  # the router's match: its template (``/x/{id}``)
        template = observation.route_of(matched.path) if matched is not None else OTHER
        if metrics is not None:
            metrics.active -= 1
            metrics.http(template, final, time.perf_counter() - started)
        enabled = front.root_of().current.settings.server.access_log
        front.log_access(enabled, exchange, path, final, started)
        if tracing is not None and span is not None:
            if template != route:
                span.update_name(f"{scope['method']} {template}")
                span.set_attribute("http.route", template)
            tracing.end_server_span(span, token, final)
