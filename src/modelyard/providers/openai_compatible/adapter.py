"""The adapter for OpenAI-compatible upstreams: I/O through the transport, shapes in the codec."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from modelyard.core.chat import ChatRequest, ChatResult, Usage
from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.core.errors import UpstreamConnectionError, UpstreamError
from modelyard.core.events import StreamEvent
from modelyard.providers.base import CallContext, Provider, ProviderSettings
from modelyard.providers.errors import to_error
from modelyard.providers.openai_compatible import codec
from modelyard.providers.openai_compatible.errors import classify_error, stream_failure
from modelyard.providers.openai_compatible.presets import PRESETS
from modelyard.providers.sse import SSEDecoder
from modelyard.providers.transport import Transport

CLIENT_HEADER = "x-modelyard-client"


class OpenAICompatibleProvider(Provider):
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
        self._label = f"provider {settings.name!r}"

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

    async def chat(self, request: ChatRequest, model: str, ctx: CallContext) -> ChatResult:
        body = codec.build_body(request, model, self.preset, stream=False)
        resp = await self.transport.post(
            self._url("chat/completions", model),
            self._headers_for(ctx),
            body,
            self.timeouts(ctx),
            self._label,
        )
        if resp.status >= 400:
            raise classify_error(resp.status, resp.headers, resp.body, self._label)
        return codec.parse_response(self._json(resp.body), self._label, self.preset)

    async def stream(
        self, request: ChatRequest, model: str, ctx: CallContext
    ) -> AsyncIterator[StreamEvent]:
        body = codec.build_body(request, model, self.preset, stream=True)
        upstream = await self.transport.open_stream(
            self._url("chat/completions", model),
            {**self._headers_for(ctx), "accept": "text/event-stream"},
            body,
            self.timeouts(ctx),
            self._label,
        )
        try:
            if upstream.status >= 400:
                payload = await upstream.read_all()
                raise classify_error(upstream.status, upstream.headers, payload, self._label)
            decoder = SSEDecoder()
            async for chunk in upstream.chunks():
                for event in decoder.feed(chunk):
                    if event.data == "[DONE]":
                        return
                    for item in self._chunk_events(event.data):
                        yield item
            raise UpstreamConnectionError(f"{self._label}: the stream ended before [DONE]")
        finally:
            upstream.close()

    def _chunk_events(self, data: str) -> list[StreamEvent]:
        parsed = self._json(data)
        if isinstance(parsed, dict) and "error" in parsed:
            raise to_error(stream_failure(parsed, data), self._label)
        try:
            return codec.parse_chunk(parsed, self.preset)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamError(f"{self._label}: the upstream sent a malformed chunk") from exc

    async def embed(
        self, request: EmbeddingRequest, model: str, ctx: CallContext
    ) -> EmbeddingResult:
        payload: dict[str, object] = {**request.extra, "model": model, "input": request.inputs}
        payload["encoding_format"] = "float"
        if request.dimensions is not None:
            payload["dimensions"] = request.dimensions
        if request.user is not None:
            payload["user"] = request.user
        resp = await self.transport.post(
            self._url("embeddings", model),
            self._headers_for(ctx),
            orjson.dumps(payload),
            self.timeouts(ctx),
            self._label,
        )
        if resp.status >= 400:
            raise classify_error(resp.status, resp.headers, resp.body, self._label)
        data = self._json(resp.body)
        try:
            rows = sorted(data["data"], key=lambda row: row["index"])
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamError(f"{self._label}: the upstream sent malformed embeddings") from exc
        usage_raw = data.get("usage") or {}
        usage = Usage(input_tokens=int(usage_raw.get("prompt_tokens") or 0))
        return EmbeddingResult(vectors=vectors, usage=usage, upstream_model=data.get("model"))
