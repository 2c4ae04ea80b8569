"""The Starlette application behind ``FakeGemini``: routing, recording, keys and answers."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .gemini_faults import cached_tokens, parse_fault, preflight, shape_body, shape_stream
from .gemini_model import build_answer, signature_for
from .gemini_responses import (
    embeddings_body,
    json_array_frames,
    prompt_blocked_body,
    response_body,
    safety_blocked_body,
    sse_frames,
    stream_chunks,
)
from .gemini_wire import (
    bad_key,
    check_embed,
    check_generate,
    google_error,
    invalid,
    json_response,
    missing_key,
)
from .openai_app import FakeState, RecordedRequest, _parse_json, _read_body, _replaying

_METHODS = ("generateContent", "streamGenerateContent", "batchEmbedContents")


def build_app(state: FakeState) -> ASGIApp:
    endpoints = _Endpoints(state)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        state.closing = asyncio.Event()
        state.loop = asyncio.get_running_loop()
        yield

    app = Starlette(
        routes=[Route("/v1beta/{target:path}", endpoints.dispatch, methods=["POST"])],
        lifespan=lifespan,
    )
    return _Front(app, state)


class _Endpoints:
    def __init__(self, state: FakeState) -> None:
        self._state = state

    async def dispatch(self, request: Request) -> Response:
        model, _, method = str(request.path_params["target"]).rpartition(":")
        if not model.startswith("models/") or method not in _METHODS:
            return google_error(404, f"Method not found: {request.url.path}")
        model = model.removeprefix("models/")
        body = _parse_json(await request.body())
        if not isinstance(body, dict):
            return invalid("Invalid JSON payload received. Expected an object.")
        scripted = self._state.script_for(model)
        if scripted is not None:
            return await scripted(request, body)
        fault = parse_fault(model)
        closing = self._state.closing
        assert closing is not None, "the fake Gemini app was used without its lifespan"
        early = await preflight(fault, model, method, request, closing)
        if early is not None:
            return early
        if method == "batchEmbedContents":
            return check_embed(body, model) or json_response(embeddings_body(body))
        problem = check_generate(body) or _check_signatures(model, body["contents"])
        if problem is not None:
            return problem
        answer = build_answer(model, body, self._state.ids.make("", 22), cached_tokens(fault))
        name = fault.name if fault else ""
        if method == "generateContent":
            if name == "blocked-prompt":
                return json_response(prompt_blocked_body(answer))
            if name == "blocked-safety":
                return json_response(safety_blocked_body(answer))
            return shape_body(fault, orjson.dumps(response_body(answer)))
        if name == "blocked-prompt":
            chunks = [prompt_blocked_body(answer)]
        elif name == "blocked-safety":
            chunks = [safety_blocked_body(answer)]
        else:
            chunks = stream_chunks(answer)
        if request.query_params.get("alt") == "sse":
            return shape_stream(fault, sse_frames(chunks), "text/event-stream", closing)
        return shape_stream(fault, json_array_frames(chunks), "application/json", closing)


def _check_signatures(model: str, contents: list[Mapping[str, Any]]) -> Response | None:
    """Gemini 3 refuses function calls of the current turn that lost their thought signature."""
    if not model.startswith("gemini-3"):
        return None
    start = 0
    for i, content in enumerate(contents):
        parts = content.get("parts") or []
        if content.get("role", "user") == "user" and any("text" in p for p in parts):
            start = i
    for position, content in enumerate(contents[start:], start):
        calls = [p for p in content.get("parts") or [] if "functionCall" in p]
        if not calls or content.get("role") != "model":
            continue
        name = calls[0]["functionCall"].get("name", "")
        if calls[0].get("thoughtSignature") != signature_for(name):
            return invalid(
                "Function call is missing a thought_signature in functionCall parts. This is "
                "required for tools to work correctly, and missing thought_signature may lead to "
                f"degraded model performance. Additional data, function call `{name}` , position "
                f"{position + 1}. Please refer to https://ai.google.dev/gemini-api/docs/"
                "thought-signatures for more details."
            )
    return None


class _Front:
    """Records each request and checks the API key before the app sees it."""

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
        query = scope.get("query_string", b"").decode("latin-1")
        self._state.record(
            RecordedRequest(scope["method"], scope["path"], query, headers, raw, _parse_json(raw))
        )
        replay = _replaying(raw, receive)
        denied = _check_key(self._state.api_key, headers, query)
        if denied is not None:
            await denied(scope, replay, send)
            return
        await self._app(scope, replay, send)


def _check_key(expected: str | None, headers: Mapping[str, str], query: str) -> Response | None:
    if expected is None:
        return None
    # Google takes the key from the header or from a ``key`` query parameter.
    provided = headers.get("x-goog-api-key")
    if provided is None:
        params = dict(item.partition("=")[::2] for item in query.split("&") if item)
        provided = params.get("key")
    if not provided:
        return missing_key()
    if not secrets.compare_digest(provided.encode(), expected.encode()):
        return bad_key()
    return None
