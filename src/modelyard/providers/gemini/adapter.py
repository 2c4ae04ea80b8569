"""The adapter for Google's Gemini API: I/O through the transport, shapes in the codec modules.

Endpoints (relative to the base URL, by default ``https://generativelanguage.googleapis.com/
v1beta``): ``models/{model}:generateContent``, ``models/{model}:streamGenerateContent?alt=sse``
and ``models/{model}:batchEmbedContents``; the key goes in the ``x-goog-api-key`` header.

Option ``thinking`` says how ``reasoning_effort`` is sent: ``level`` (``thinkingLevel``, Gemini 3
on), ``budget`` (``thinkingBudget``, which Gemini 2.5 needs) or ``auto`` (the default: a budget for
models named ``gemini-1*``/``gemini-2*``, a level otherwise).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import ClassVar
from urllib.parse import quote

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.core.events import StreamEvent
from modelyard.providers.base import CallContext, Provider, ProviderSettings
from modelyard.providers.errors import to_error
from modelyard.providers.gemini import codec
from modelyard.providers.gemini.embeddings import embedding_bodies, parse_embeddings
from modelyard.providers.gemini.errors import classify_error, error_status, failure_of
from modelyard.providers.gemini.response import parse_response
from modelyard.providers.gemini.stream import StreamState
from modelyard.providers.sse import SSEDecoder
from modelyard.providers.transport import Transport

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
KEY_HEADER = "x-goog-api-key"


def model_path(model: str) -> str:
    """The resource name of ``model``: ``models/<name>`` unless already a resource name."""
    if model.startswith(("models/", "tunedModels/")):
        return model
    return "models/" + quote(model, safe="")


class GeminiProvider(Provider):
    KEY_ENV: ClassVar[str | None] = "GEMINI_API_KEY"
    OPTIONS: ClassVar[Mapping[str, str]] = {
        "thinking": "how reasoning_effort is sent: auto (default), level or budget",
    }

    def __init__(self, settings: ProviderSettings, transport: Transport) -> None:
        super().__init__(settings, transport)
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        headers = {"content-type": "application/json", "accept": "application/json"}
        headers.update(settings.headers)
        if settings.api_key:
            headers[KEY_HEADER] = settings.api_key
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        thinking = settings.options.get("thinking", "auto")
        if thinking not in codec.THINKING_MODES:
            raise ValueError(f"provider {settings.name!r}: unknown thinking mode {thinking!r}")
        self._thinking: codec.ThinkingMode = thinking
        self._label = f"provider {settings.name!r}"

    @classmethod
    def check_options(cls, options: Mapping[str, object]) -> list[tuple[str, str]]:
        problems = super().check_options(options)
        thinking = options.get("thinking", "auto")
        if thinking not in codec.THINKING_MODES:
            modes = ", ".join(codec.THINKING_MODES)
            problems.append(("thinking", f"must be one of {modes}; got {thinking!r}"))
        return problems

    def _url(self, model: str, method: str) -> str:
        return f"{self.base_url}/{model_path(model)}:{method}"

    async def chat(self, request: ChatRequest, model: str, ctx: CallContext) -> ChatResult:
        body = codec.build_body(request, model, self._thinking)
        resp = await self.transport.post(
            self._url(model, "generateContent"),
            self._headers,
            body,
            self.timeouts(ctx),
            self._label,
        )
        if resp.status >= 400:
            raise classify_error(resp.status, resp.headers, resp.body, self._label)
        return parse_response(self._json(resp.body), self._label, codec.single_tool_call(request))

    async def stream(
        self, request: ChatRequest, model: str, ctx: CallContext
    ) -> AsyncIterator[StreamEvent]:
        body = codec.build_body(request, model, self._thinking)
        upstream = await self.transport.open_stream(
            self._url(model, "streamGenerateContent?alt=sse"),
            self._stream_headers,
            body,
            self.timeouts(ctx),
            self._label,
        )
        try:
            if upstream.status >= 400:
                payload = await upstream.read_all()
                raise classify_error(upstream.status, upstream.headers, payload, self._label)
            state = StreamState(self._label, single_call=codec.single_tool_call(request))
            decoder = SSEDecoder()
            async for chunk in upstream.chunks():
                for event in decoder.feed(chunk):
                    for item in self._chunk_events(state, event.data):
                        yield item
            for item in state.close():
                yield item
        finally:
            upstream.close()

    def _chunk_events(self, state: StreamState, data: str) -> list[StreamEvent]:
        if not data.strip():
            return []
        parsed = self._json(data)
        if "error" in parsed:
            # Google reports a failure after the first byte as an error object in the stream.
            failure = failure_of(error_status(data), {}, data, stream_started=True)
            raise to_error(failure, self._label)
        return state.feed(parsed)

    async def embed(
        self, request: EmbeddingRequest, model: str, ctx: CallContext
    ) -> EmbeddingResult:
        vectors: list[list[float]] = []
        # Batches go one after another: Google's per-minute quotas punish bursts anyway.
        for count, body in embedding_bodies(request, model_path(model)):
            resp = await self.transport.post(
                self._url(model, "batchEmbedContents"),
                self._headers,
                body,
                self.timeouts(ctx),
                self._label,
            )
            if resp.status >= 400:
                raise classify_error(resp.status, resp.headers, resp.body, self._label)
            vectors.extend(parse_embeddings(self._json(resp.body), count, self._label))
        return EmbeddingResult(vectors=vectors, usage=None, upstream_model=model)
