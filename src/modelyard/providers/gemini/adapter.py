"""The adapter for Google's Gemini API: shapes in the codec modules, I/O in ``HttpAdapter``.

Endpoints (relative to the base URL, by default ``https://generativelanguage.googleapis.com/
v1beta``): ``models/{model}:generateContent``, ``models/{model}:streamGenerateContent?alt=sse``
and ``models/{model}:batchEmbedContents``; the key goes in the ``x-goog-api-key`` header.

Option ``thinking`` says how ``reasoning_effort`` is sent: ``level`` (``thinkingLevel``, Gemini 3
on), ``budget`` (``thinkingBudget``, which Gemini 2.5 needs) or ``auto`` (the default: a budget for
models named ``gemini-1*``/``gemini-2*``, a level otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

from pydantic import Field

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.core.events import StreamEvent
from modelyard.providers.base import CallContext, ProviderOptions, ProviderSettings
from modelyard.providers.errors import UpstreamFailure
from modelyard.providers.gemini import codec
from modelyard.providers.gemini.embeddings import embedding_bodies, parse_embeddings
from modelyard.providers.gemini.errors import error_status, failure_of
from modelyard.providers.gemini.response import parse_response
from modelyard.providers.gemini.stream import StreamState
from modelyard.providers.http_adapter import HttpAdapter, Outgoing, StreamCall
from modelyard.providers.sse import SSEDecoder, SSEEvent
from modelyard.providers.transport import Transport

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
KEY_HEADER = "x-goog-api-key"


def model_path(model: str) -> str:
    """The resource name of ``model``: ``models/<name>`` unless already a resource name."""
    if model.startswith(("models/", "tunedModels/")):
        return model
    return "models/" + quote(model, safe="")


class GeminiOptions(ProviderOptions):
    thinking: codec.ThinkingMode = Field(
        "auto",
        description="how reasoning_effort is sent: level (thinkingLevel, Gemini 3 on), budget "
        "(thinkingBudget, Gemini 2.5) or auto (a budget for gemini-1*/gemini-2*, else a level)",
    )


class GeminiProvider(HttpAdapter):
    KEY_ENV: ClassVar[str | None] = "GEMINI_API_KEY"
    Options: ClassVar[type[ProviderOptions]] = GeminiOptions

    def __init__(self, settings: ProviderSettings, transport: Transport) -> None:
        super().__init__(settings, transport)
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        headers = {"content-type": "application/json", "accept": "application/json"}
        headers.update(settings.headers)
        if settings.api_key:
            headers[KEY_HEADER] = settings.api_key
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        self._thinking = GeminiOptions.model_validate(settings.options).thinking

    def _url(self, model: str, method: str) -> str:
        return f"{self.base_url}/{model_path(model)}:{method}"

    def failure(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamFailure:
        return failure_of(status, headers, body)

    async def chat(self, request: ChatRequest, model: str, ctx: CallContext) -> ChatResult:
        body = codec.build_body(request, model, self._thinking)
        out = Outgoing(self._url(model, "generateContent"), self._headers, body)
        resp = await self.exchange(out, ctx)
        return parse_response(self._json(resp.body), self.label, codec.single_tool_call(request))

    def stream_call(
        self, request: ChatRequest, model: str, ctx: CallContext
    ) -> StreamCall[SSEEvent]:
        body = codec.build_body(request, model, self._thinking)
        out = Outgoing(
            self._url(model, "streamGenerateContent?alt=sse"), self._stream_headers, body
        )
        state = StreamState(self.label, single_call=codec.single_tool_call(request))
        return StreamCall(out, SSEDecoder(), _ChunkReader(self, state))

    async def embed(
        self, request: EmbeddingRequest, model: str, ctx: CallContext
    ) -> EmbeddingResult:
        vectors: list[list[float]] = []
        url = self._url(model, "batchEmbedContents")
        # Batches go one after another: Google's per-minute quotas punish bursts anyway.
        for count, body in embedding_bodies(request, model_path(model)):
            resp = await self.exchange(Outgoing(url, self._headers, body), ctx)
            vectors.extend(parse_embeddings(self._json(resp.body), count, self.label))
        return EmbeddingResult(vectors=vectors, usage=None, upstream_model=model)


class _ChunkReader:
    """``GenerateContentResponse`` chunks until the body ends; Google reports a failure after
    the first byte as an error object in the stream."""

    __slots__ = ("_adapter", "_state")
    done = False  # the body's end is the stream's end

    def __init__(self, adapter: GeminiProvider, state: StreamState) -> None:
        self._adapter = adapter
        self._state = state

    def event(self, frame: SSEEvent) -> list[StreamEvent]:
        data = frame.data
        if not data.strip():
            return []
        parsed = self._adapter._json(data)
        if "error" in parsed:
            failure = failure_of(error_status(data), {}, data, stream_started=True)
            raise self._adapter.error(failure)
        return self._state.feed(parsed)

    def end(self) -> list[StreamEvent]:
        return self._state.close()
