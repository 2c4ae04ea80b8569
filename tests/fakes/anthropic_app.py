"""The Starlette application behind ``FakeAnthropic``: routes, recording, auth and headers."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .anthropic_faults import parse_fault, preflight, shape_body, shape_stream
from .anthropic_messages import build_answer, message_body, prompt_tokens
from .anthropic_stream import stream_events
from .anthropic_validate import check_request
from .anthropic_wire import (
    ORGANIZATION_ID,
    AnthropicIds,
    error_response,
    invalid,
    json_response,
    rate_limit_headers,
)
from .openai_app import RecordedRequest, ScriptHandler


@dataclass(slots=True)
class FakeState:
    """What the app shares with the ``FakeAnthropic`` that owns it, across the two threads."""

    api_key: str | None
    record: Callable[[RecordedRequest], None]
    script_for: Callable[[str], ScriptHandler | None] = lambda _model: None
    ids: AnthropicIds = field(default_factory=AnthropicIds)
    # Prompt prefixes written to the fake's "cache" (only touched on the server's loop).
    cache: set[str] = field(default_factory=set)
    closing: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None


def build_app(state: FakeState) -> ASGIApp:
    endpoints = _Endpoints(state)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        state.closing = asyncio.Event()
        state.loop = asyncio.get_running_loop()
        yield

    app = Starlette(
        routes=[
            Route("/v1/messages", endpoints.messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", endpoints.count_tokens, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    return _Front(app, state)


class _Endpoints:
    def __init__(self, state: FakeState) -> None:
        self._state = state

    async def messages(self, request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        scripted = self._state.script_for(str(body.get("model")))
        if scripted is not None:
            return await scripted(request, body)
        error = check_request(body, betas=request.headers.get("anthropic-beta", ""))
        if error is not None:
            return invalid(error)
        model: str = body["model"]
        fault = parse_fault(model)
        early = await preflight(fault, model, request, self._closing)
        if early is not None:
            return early
        answer = build_answer(body, self._state.ids, self._state.cache)
        if body.get("stream") is True:
            events = stream_events(answer)
            return shape_stream(fault, events, self._closing, self._state.ids.request())
        return shape_body(fault, orjson.dumps(message_body(answer)))

    async def count_tokens(self, request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        error = check_request(body, counting=True, betas=request.headers.get("anthropic-beta", ""))
        if error is not None:
            return invalid(error)
        return json_response({"input_tokens": prompt_tokens(body)})

    @property
    def _closing(self) -> asyncio.Event:
        if self._state.closing is None:
            raise RuntimeError("the fake Anthropic app was used without its lifespan")
        return self._state.closing


class _Front:
    """Records each request, checks the key and ``anthropic-version``, adds response headers.

    It sits outside Starlette so that requests to unknown routes and rejected keys are
    recorded and answered the same way as everything else.
    """

    def __init__(self, app: ASGIApp, state: FakeState) -> None:
        self._app = app
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        raw = await _read_body(receive)
        if raw is None:
            return  # the client left before finishing its request
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self._state.record(
            RecordedRequest(
                method=scope["method"],
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=raw,
                json=_parse_json(raw),
            )
        )
        request_id = self._state.ids.request()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = {"request-id": request_id, "anthropic-organization-id": ORGANIZATION_ID}
                if message["status"] == 200:
                    extra |= rate_limit_headers(49)
                pairs = [(k.encode(), v.encode()) for k, v in extra.items()]
                message = {**message, "headers": [*message.get("headers", []), *pairs]}
            await send(message)

        denied = self._deny(headers)
        if denied is not None:
            await denied(scope, _replaying(raw, receive), send_with_headers)
            return
        await self._app(scope, _replaying(raw, receive), send_with_headers)

    def _deny(self, headers: dict[str, str]) -> Response | None:
        expected = self._state.api_key
        if expected is not None:
            # Newer official SDKs send the key as a bearer token; the API takes either form.
            bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
            provided = headers.get("x-api-key") or bearer
            if not provided or not secrets.compare_digest(provided, expected):
                return error_response(401, "invalid x-api-key")
        if "anthropic-version" not in headers:
            return invalid("anthropic-version: header is required")
        return None


async def _read_body(receive: Receive) -> bytes | None:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _replaying(raw: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body over once, then waits for disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replay


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


async def _json_body(request: Request) -> dict[str, Any] | Response:
    body = _parse_json(await request.body())
    return body if isinstance(body, dict) else invalid("There was an error parsing the body")


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status in (404, 405):
        return error_response(404, "Not Found")
    return error_response(status, str(getattr(exc, "detail", "error")))
