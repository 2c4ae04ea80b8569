"""The Starlette application behind ``FakeOpenAI``: routes, recording, auth and headers."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .openai_chat import build_answer, completion_body, validate_chat_request
from .openai_embeddings import (
    embeddings_body,
    model_object,
    models_body,
    validate_embeddings_request,
)
from .openai_faults import parse_fault, preflight, shape_body, shape_stream
from .openai_stream import stream_frames
from .openai_wire import (
    IdFactory,
    error_response,
    invalid_api_key,
    invalid_url,
    json_response,
    missing_api_key,
    rate_limit_headers,
    unparseable_body,
)

ScriptHandler = Callable[[Request, dict[str, Any]], Awaitable[Response]]
"""A custom answer for one model: gets the request and its parsed JSON body."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it.

    ``headers`` has lower-case names; ``body`` is the raw bytes and ``json`` their parsed value
    (``None`` when the body is empty or not JSON).
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any


@dataclass(slots=True)
class FakeState:
    """What the app shares with the ``FakeOpenAI`` that owns it, across the two threads."""

    api_key: str | None
    models: tuple[str, ...]
    record: Callable[[RecordedRequest], None]
    script_for: Callable[[str], ScriptHandler | None]
    ids: IdFactory = field(default_factory=IdFactory)
    # Created on the server's loop at startup; set by ``stop()`` to release waiting handlers.
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
            Route("/v1/chat/completions", endpoints.chat, methods=["POST"]),
            # Azure OpenAI serves the same API at deployment URLs with an api-version.
            Route(
                "/openai/deployments/{deployment}/chat/completions",
                endpoints.azure_chat,
                methods=["POST"],
            ),
            Route("/v1/embeddings", endpoints.embeddings, methods=["POST"]),
            Route("/v1/models", endpoints.list_models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", endpoints.get_model, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    return _Front(app, state)


class _Endpoints:
    def __init__(self, state: FakeState) -> None:
        self._state = state

    async def chat(self, request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        scripted = self._script(body)
        if scripted is not None:
            return await scripted(request, body)
        error = validate_chat_request(body)
        if error is not None:
            return error
        model: str = body["model"]
        stream = body.get("stream") is True
        fault = parse_fault(model)
        early = await preflight(fault, model, request, self._closing, stream=stream)
        if early is not None:
            return early
        answer = build_answer(body, self._state.ids)
        if stream:
            frames = stream_frames(answer, body.get("stream_options"))
            return shape_stream(fault, frames, self._closing)
        return shape_body(fault, orjson.dumps(completion_body(answer)), {})

    async def azure_chat(self, request: Request) -> Response:
        if "api-version" not in request.query_params:
            # What Azure answers a request without its api-version.
            body = {"error": {"code": "404", "message": "Resource not found"}}
            return Response(orjson.dumps(body), 404, media_type="application/json")
        return await self.chat(request)

    async def embeddings(self, request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        scripted = self._script(body)
        if scripted is not None:
            return await scripted(request, body)
        error = validate_embeddings_request(body)
        if error is not None:
            return error
        model: str = body["model"]
        fault = parse_fault(model)
        early = await preflight(fault, model, request, self._closing, stream=False)
        if early is not None:
            return early
        return shape_body(fault, orjson.dumps(embeddings_body(body)), {})

    async def list_models(self, _request: Request) -> Response:
        return json_response(models_body(self._state.models))

    async def get_model(self, request: Request) -> Response:
        model_id: str = request.path_params["model_id"]
        if model_id not in self._state.models:
            return error_response(
                404,
                f"The model '{model_id}' does not exist",
                "invalid_request_error",
                param="model",
                code="model_not_found",
            )
        return json_response(model_object(model_id))

    @property
    def _closing(self) -> asyncio.Event:
        if self._state.closing is None:
            raise RuntimeError("the fake OpenAI app was used without its lifespan")
        return self._state.closing

    def _script(self, body: dict[str, Any]) -> ScriptHandler | None:
        model = body.get("model")
        return self._state.script_for(model) if isinstance(model, str) else None


class _Front:
    """Records each request, checks the key and adds OpenAI's response headers.

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
        started = time.monotonic()
        raw = await _read_body(receive)
        if raw is None:
            return  # the client left before finishing its request: nobody to answer
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method: str = scope["method"]
        self._state.record(
            RecordedRequest(
                method=method,
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
                extra = _response_headers(request_id, started, method, message["status"])
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        replay = _replaying(raw, receive)
        denied = _check_key(self._state.api_key, headers.get("authorization", ""))
        if denied is not None:
            await denied(scope, replay, send_with_headers)
            return
        await self._app(scope, replay, send_with_headers)


def _check_key(expected: str | None, authorization: str) -> Response | None:
    if expected is None:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if not authorization or (scheme.lower() == "bearer" and not token):
        return missing_api_key()
    if scheme.lower() != "bearer" or not secrets.compare_digest(token, expected):
        return invalid_api_key(token or authorization)
    return None


def _response_headers(
    request_id: str, started: float, method: str, status: int
) -> list[tuple[bytes, bytes]]:
    elapsed_ms = int((time.monotonic() - started) * 1000)
    headers = {
        "x-request-id": request_id,
        "openai-version": "2020-10-01",
        "openai-processing-ms": str(elapsed_ms),
    }
    if method == "POST" and status == 200:
        headers |= rate_limit_headers(499)
    return [(name.encode(), value.encode()) for name, value in headers.items()]


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
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


async def _json_body(request: Request) -> dict[str, Any] | Response:
    body = _parse_json(await request.body())
    return body if isinstance(body, dict) else unparseable_body()


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status in (404, 405):
        return invalid_url(request.method, request.url.path, status)
    detail = exc.detail if isinstance(exc, HTTPException) else "error"
    return error_response(status, str(detail), "invalid_request_error")
