"""The worker's ASGI application: an OpenAI-compatible API over the loaded models."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from modelyard.core.chat import Usage
from modelyard.core.embeddings import EmbeddingResult
from modelyard.core.errors import (
    InternalError,
    InvalidRequest,
    ModelNotFound,
    ModelyardError,
    NotFound,
)
from modelyard.local.asgi import (
    ClientDisconnected,
    HttpRequest,
    Responder,
    read_body,
    request_headers,
    run_until_disconnect,
)
from modelyard.local.chat_response import collect_chat, stream_chat
from modelyard.local.engine import ModelEngine
from modelyard.local.llama_model import LoadedModel
from modelyard.local.wire import decode_body, parse_chat, parse_embeddings
from modelyard.protocols.openai.encode import embeddings_json

logger = logging.getLogger("modelyard.local")

CLIENT_HEADER = "x-modelyard-client"
"""Who the gateway says a request is for; the fair queues take turns between these."""

MAX_BODY_BYTES = 16 * 1024 * 1024

Handler = Callable[[HttpRequest, Responder], Coroutine[Any, Any, None]]


class MethodNotAllowed(InvalidRequest):
    status = 405


def _model_json(info: LoadedModel) -> dict[str, object]:
    return {
        "id": info.name,
        "object": "model",
        "created": info.created,
        "owned_by": "modelyard",
        "context_window": info.n_ctx,
        "n_ctx_train": info.n_ctx_train,
    }


class WorkerApp:
    """Routes requests to the engines; built once the engines are loaded."""

    def __init__(self, engines: Mapping[str, ModelEngine]) -> None:
        self._engines = dict(engines)
        self._routes: dict[str, tuple[str, Handler]] = {
            "/health": ("GET", self._health),
            "/v1/models": ("GET", self._models),
            "/v1/chat/completions": ("POST", self._chat),
            "/v1/embeddings": ("POST", self._embeddings),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for engine in self._engines.values():
                    engine.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        out = Responder(send)
        method: str = scope["method"]
        path: str = scope["path"]
        try:
            handler = self._route(method, path)
            body = await read_body(receive, MAX_BODY_BYTES) if method == "POST" else b""
            request = HttpRequest(method, path, request_headers(scope["headers"]), body)
            await run_until_disconnect(handler(request, out), receive)
        except ModelyardError as exc:
            await out.error(exc)
        except ClientDisconnected:
            return
        except Exception:
            logger.exception("unhandled error serving %s %s", method, path)
            await out.error(InternalError("internal error in the local model worker"))

    def _route(self, method: str, path: str) -> Handler:
        if path.startswith("/v1/models/"):
            return self._model
        route = self._routes.get(path)
        if route is None:
            raise NotFound(f"unknown request URL: {method} {path}", code="unknown_url")
        expected, handler = route
        if method != expected:
            raise MethodNotAllowed(f"{path} accepts {expected}, not {method}")
        return handler

    def _engine(self, model: str) -> ModelEngine:
        engine = self._engines.get(model)
        if engine is None:
            raise ModelNotFound(model, list(self._engines))
        return engine

    async def _health(self, request: HttpRequest, out: Responder) -> None:
        # ``waiting``: requests queued per model, for the gateway's metrics.
        waiting = {name: engine.queue.waiting for name, engine in self._engines.items()}
        body = {"status": "ok", "models": list(self._engines), "waiting": waiting}
        await out.json(200, orjson.dumps(body))

    async def _models(self, request: HttpRequest, out: Responder) -> None:
        data = [_model_json(engine.info) for engine in self._engines.values()]
        await out.json(200, orjson.dumps({"object": "list", "data": data}))

    async def _model(self, request: HttpRequest, out: Responder) -> None:
        if request.method != "GET":
            raise MethodNotAllowed(f"{request.path} accepts GET, not {request.method}")
        engine = self._engine(request.path.removeprefix("/v1/models/"))
        await out.json(200, orjson.dumps(_model_json(engine.info)))

    async def _chat(self, request: HttpRequest, out: Responder) -> None:
        params = parse_chat(decode_body(request.body))
        engine = self._engine(params.model)
        prepared = engine.prepare(params)
        ticket = engine.queue.enqueue(request.headers.get(CLIENT_HEADER, ""))
        await ticket.wait()
        run = engine.start_chat(prepared, ticket)
        try:
            if params.stream:
                await stream_chat(out, params, run)
            else:
                await out.json(200, await collect_chat(params, run))
        finally:
            # Normally a no-op; after a disconnect or an error it stops the generation.
            run.cancel()

    async def _embeddings(self, request: HttpRequest, out: Responder) -> None:
        params = parse_embeddings(decode_body(request.body))
        engine = self._engine(params.model)
        if params.dimensions is not None and params.dimensions != engine.info.n_embd:
            raise InvalidRequest(
                f"dimensions: model {engine.name!r} produces {engine.info.n_embd} dimensions "
                f"and cannot shorten them, got {params.dimensions}",
                param="dimensions",
            )
        ticket = engine.queue.enqueue(request.headers.get(CLIENT_HEADER, ""))
        await ticket.wait()
        vectors, tokens = await engine.embed(params, ticket)
        result = EmbeddingResult(vectors, Usage(input_tokens=tokens))
        await out.json(
            200, embeddings_json(result, params.model, params.encoding_format == "base64")
        )
