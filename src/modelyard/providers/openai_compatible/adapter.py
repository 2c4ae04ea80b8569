"""The adapter for OpenAI-compatible upstreams: shapes in the codec, I/O in ``HttpAdapter``."""

from __future__ import annotations

from collections.abc import Mapping

from modelyard.core.chat import ChatRequest, ChatResult, Usage
from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.core.errors import UpstreamConnectionError, UpstreamError
from modelyard.core.events import StreamEvent
from modelyard.providers.base import CallContext, ProviderSettings, encode_body
from modelyard.providers.errors import UpstreamFailure
from modelyard.providers.http_adapter import HttpAdapter, Outgoing, StreamCall
from modelyard.providers.openai_compatible import codec
from modelyard.providers.openai_compatible.errors import http_failure, stream_failure
from modelyard.providers.openai_compatible.presets import PRESETS, Preset
from modelyard.providers.sse import SSEDecoder, SSEEvent
from modelyard.providers.transport import Transport

CLIENT_HEADER = "x-modelyard-client"


class OpenAICompatibleProvider(HttpAdapter):
    def __init__(self, settings: ProviderSettings, transport: Transport) -> None:
        super().__init__(settings, transport)
        self.preset = PRESETS[settings.type]
        base = settings.base_url or self.preset.base_url
        if base is None:
            raise ValueError(f"provider {settings.name!r} has no base_url")
        self.base_url = base.rstrip("/")
        headers = {"content-type": "application/json", "accept": "application/json"}
        headers.update(settings.headers)
        headers.update(self._auth_headers(settings.api_key))
        self._headers = headers

    def _auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def _url(self, operation: str, model: str) -> str:
        """The URL of ``operation`` (``chat/completions``, ``embeddings``) for ``model``."""
        return f"{self.base_url}/{operation}"

    def _headers_for(self, ctx: CallContext) -> dict[str, str]:
        # Only our own model worker takes turns between clients; a vendor has no use for the
        # caller's key id, so it never leaves the platform.
        if ctx.client_id is None or self.preset.type != "local":
            return self._headers
        return {**self._headers, CLIENT_HEADER: ctx.client_id}

    def failure(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamFailure:
        return http_failure(status, headers, body)

    async def chat(self, request: ChatRequest, model: str, ctx: CallContext) -> ChatResult:
        body = codec.build_body(request, model, self.preset, stream=False)
        out = Outgoing(self._url("chat/completions", model), self._headers_for(ctx), body)
        resp = await self.exchange(out, ctx)
        return codec.parse_response(self._json(resp.body), self.label, self.preset)

    def stream_call(
        self, request: ChatRequest, model: str, ctx: CallContext
    ) -> StreamCall[SSEEvent]:
        body = codec.build_body(request, model, self.preset, stream=True)
        headers = {**self._headers_for(ctx), "accept": "text/event-stream"}
        out = Outgoing(self._url("chat/completions", model), headers, body)
        return StreamCall(out, SSEDecoder(), _ChunkReader(self, self.preset))

    async def embed(
        self, request: EmbeddingRequest, model: str, ctx: CallContext
    ) -> EmbeddingResult:
        payload: dict[str, object] = {**request.extra, "model": model, "input": request.inputs}
        payload["encoding_format"] = "float"
        if request.dimensions is not None:
            payload["dimensions"] = request.dimensions
        if request.user is not None:
            payload["user"] = request.user
        out = Outgoing(self._url("embeddings", model), self._headers_for(ctx), encode_body(payload))
        data = self._json((await self.exchange(out, ctx)).body)
        try:
            rows = sorted(data["data"], key=lambda row: row["index"])
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamError(f"{self.label}: the upstream sent malformed embeddings") from exc
        usage_raw = data.get("usage") or {}
        usage = Usage(input_tokens=int(usage_raw.get("prompt_tokens") or 0))
        return EmbeddingResult(vectors=vectors, usage=usage, upstream_model=data.get("model"))


class _ChunkReader:
    """``chat.completion.chunk`` events until ``[DONE]``; an ``{"error": ...}`` chunk raises."""

    __slots__ = ("_adapter", "_preset", "done")

    def __init__(self, adapter: OpenAICompatibleProvider, preset: Preset) -> None:
        self._adapter = adapter
        self._preset = preset
        self.done = False

    def event(self, frame: SSEEvent) -> list[StreamEvent]:
        data = frame.data
        if data == "[DONE]":
            self.done = True
            return []
        parsed = self._adapter._json(data)
        if "error" in parsed:
            raise self._adapter.error(stream_failure(parsed, data))
        try:
            return codec.parse_chunk(parsed, self._preset)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            label = self._adapter.label
            raise UpstreamError(f"{label}: the upstream sent a malformed chunk") from exc

    def end(self) -> list[StreamEvent]:
        raise UpstreamConnectionError(f"{self._adapter.label}: the stream ended before [DONE]")
