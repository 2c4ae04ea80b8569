"""The adapter for Anthropic's Messages API: I/O through the transport, shapes in the codec."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

import orjson

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.core.errors import UnsupportedCapability, UpstreamConnectionError, UpstreamError
from modelyard.core.events import StreamEvent
from modelyard.providers.anthropic.codec import (
    DEFAULT_MAX_TOKENS,
    BuildOptions,
    StructuredOutput,
    build_request,
)
from modelyard.providers.anthropic.errors import classify_error
from modelyard.providers.anthropic.response import parse_message
from modelyard.providers.anthropic.stream import StreamState
from modelyard.providers.base import CallContext, Provider, ProviderSettings
from modelyard.providers.sse import SSEDecoder
from modelyard.providers.transport import Transport

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
_STRUCTURED_OUTPUT: tuple[StructuredOutput, ...] = ("tool", "native")
# The fields the token-counting endpoint accepts; generation settings are refused there.
_COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


class AnthropicProvider(Provider):
    """Claude through the Messages API (``POST {base}/v1/messages``, ``x-api-key`` auth).

    ``settings.headers`` are sent as well and may override ``anthropic-version`` or add
    ``anthropic-beta``.
    """

    KEY_ENV: ClassVar[str | None] = "ANTHROPIC_API_KEY"
    OPTIONS: ClassVar[Mapping[str, str]] = {
        "default_max_tokens": f"max_tokens sent when the client sets none (default "
        f"{DEFAULT_MAX_TOKENS})",
        "structured_output": "how JSON answers are obtained: tool (default, any model) or "
        "native (output_config.format, Claude 4.5 and later)",
    }

    def __init__(self, settings: ProviderSettings, transport: Transport) -> None:
        super().__init__(settings, transport)
        base = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        # Accept a base URL configured with or without the version segment.
        self._api = base if base.endswith("/v1") else f"{base}/v1"
        headers = {
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
            "accept": "application/json",
        }
        headers.update(settings.headers)
        if settings.api_key:
            headers["x-api-key"] = settings.api_key
        self._headers = headers
        self._label = f"provider {settings.name!r}"
        structured = settings.options.get("structured_output", "tool")
        self._options = BuildOptions(
            provider=settings.name,
            default_max_tokens=int(settings.options.get("default_max_tokens", DEFAULT_MAX_TOKENS)),
            structured_output="native" if structured == "native" else "tool",
        )

    @classmethod
    def check_options(cls, options: Mapping[str, object]) -> list[tuple[str, str]]:
        problems = super().check_options(options)
        limit = options.get("default_max_tokens", DEFAULT_MAX_TOKENS)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            problems.append(("default_max_tokens", f"must be a positive integer; got {limit!r}"))
        mode = options.get("structured_output", "tool")
        if mode not in _STRUCTURED_OUTPUT:
            problems.append(("structured_output", f"must be one of tool, native; got {mode!r}"))
        return problems

    async def chat(self, request: ChatRequest, model: str, ctx: CallContext) -> ChatResult:
        built = build_request(request, model, self._options, stream=False)
        resp = await self.transport.post(
            f"{self._api}/messages",
            self._headers,
            built.encode(),
            self.timeouts(ctx),
            self._label,
        )
        if resp.status >= 400:
            raise classify_error(resp.status, resp.headers, resp.body, self._label)
        return parse_message(self._json(resp.body), built.json_tool, self._label)

    async def stream(
        self, request: ChatRequest, model: str, ctx: CallContext
    ) -> AsyncIterator[StreamEvent]:
        built = build_request(request, model, self._options, stream=True)
        upstream = await self.transport.open_stream(
            f"{self._api}/messages",
            {**self._headers, "accept": "text/event-stream"},
            built.encode(),
            self.timeouts(ctx),
            self._label,
        )
        try:
            if upstream.status >= 400:
                payload = await upstream.read_all()
                raise classify_error(upstream.status, upstream.headers, payload, self._label)
            decoder = SSEDecoder()
            state = StreamState(built.json_tool, self._label)
            async for chunk in upstream.chunks():
                for event in decoder.feed(chunk):
                    for item in state.feed(event.event, event.data):
                        yield item
                    if state.finished:
                        return
            raise UpstreamConnectionError(f"{self._label}: the stream ended before message_stop")
        finally:
            upstream.close()

    async def count_tokens(self, request: ChatRequest, model: str, ctx: CallContext) -> int:
        """Input tokens ``request`` would use, from the API's token-counting endpoint."""
        body = build_request(request, model, self._options, stream=False).body
        counted = {key: body[key] for key in _COUNT_FIELDS if key in body}
        resp = await self.transport.post(
            f"{self._api}/messages/count_tokens",
            self._headers,
            orjson.dumps(counted),
            self.timeouts(ctx),
            self._label,
        )
        if resp.status >= 400:
            raise classify_error(resp.status, resp.headers, resp.body, self._label)
        tokens = self._json(resp.body).get("input_tokens")
        if not isinstance(tokens, int):
            raise UpstreamError(f"{self._label}: the upstream sent a malformed token count")
        return tokens

    async def embed(
        self, request: EmbeddingRequest, model: str, ctx: CallContext
    ) -> EmbeddingResult:
        # The Messages API has no embeddings endpoint; fail before any network call.
        raise UnsupportedCapability("embeddings", model, param="model")
