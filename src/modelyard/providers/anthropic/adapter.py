"""The adapter for Anthropic's Messages API: shapes in the codec, I/O in ``HttpAdapter``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.core.errors import UnsupportedCapability, UpstreamError
from modelyard.providers.anthropic.betas import HEADER as BETA_HEADER
from modelyard.providers.anthropic.betas import BetaFilter, patterns
from modelyard.providers.anthropic.codec import (
    DEFAULT_MAX_TOKENS,
    BuildOptions,
    StructuredOutput,
    build_request,
)
from modelyard.providers.anthropic.errors import http_failure
from modelyard.providers.anthropic.response import parse_message
from modelyard.providers.anthropic.stream import StreamState
from modelyard.providers.base import CallContext, ProviderOptions, ProviderSettings, encode_body
from modelyard.providers.errors import UpstreamFailure
from modelyard.providers.http_adapter import HttpAdapter, Outgoing, StreamCall
from modelyard.providers.sse import SSEDecoder, SSEEvent
from modelyard.providers.transport import Transport

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
# The fields the token-counting endpoint accepts; generation settings are refused there.
_COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


class AnthropicOptions(ProviderOptions):
    default_max_tokens: int = Field(
        DEFAULT_MAX_TOKENS, ge=1, description="max_tokens sent when the client sets none"
    )
    structured_output: StructuredOutput = Field(
        "tool",
        description="how JSON answers are obtained: tool (any model) or native "
        "(output_config.format, Claude 4.5 and later)",
    )
    # Comma-separated, because provider options are scalars in the config file.
    betas_allowed: str = Field(
        "*",
        description="the client's anthropic-beta names forwarded upstream: comma-separated "
        "shell-style patterns (e.g. 'prompt-caching-*,mid-conversation-system-*'); '' forwards "
        "none",
    )
    betas_denied: str = Field(
        "",
        description="anthropic-beta names never forwarded, even when allowed (comma-separated "
        "patterns)",
    )


class AnthropicProvider(HttpAdapter):
    """Claude through the Messages API (``POST {base}/v1/messages``, ``x-api-key`` auth).

    ``settings.headers`` are sent as well and may override ``anthropic-version`` or add
    ``anthropic-beta``; a client's own betas are added per request as the options allow
    (``betas``).
    """

    KEY_ENV: ClassVar[str | None] = "ANTHROPIC_API_KEY"
    Options: ClassVar[type[ProviderOptions]] = AnthropicOptions

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
        options = AnthropicOptions.model_validate(settings.options)
        self._betas = BetaFilter(
            patterns(options.betas_allowed),
            patterns(options.betas_denied),
            headers.get(BETA_HEADER, ""),
        )
        self._options = BuildOptions(
            provider=settings.name,
            default_max_tokens=options.default_max_tokens,
            structured_output=options.structured_output,
        )

    def failure(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamFailure:
        return http_failure(status, headers, body)

    async def chat(self, request: ChatRequest, model: str, ctx: CallContext) -> ChatResult:
        betas = self._betas.passed(request.betas)
        built = build_request(request, model, self._options, stream=False, betas=betas)
        headers = self._betas.headers(self._headers, betas)
        out = Outgoing(f"{self._api}/messages", headers, built.encode())
        resp = await self.exchange(out, ctx)
        return parse_message(self._json(resp.body), built.json_tool, self.label)

    def stream_call(
        self, request: ChatRequest, model: str, ctx: CallContext
    ) -> StreamCall[SSEEvent]:
        betas = self._betas.passed(request.betas)
        built = build_request(request, model, self._options, stream=True, betas=betas)
        headers = {**self._betas.headers(self._headers, betas), "accept": "text/event-stream"}
        out = Outgoing(f"{self._api}/messages", headers, built.encode())
        return StreamCall(out, SSEDecoder(), StreamState(built.json_tool, self.label))

    async def count_tokens(self, request: ChatRequest, model: str, ctx: CallContext) -> int:
        """Input tokens ``request`` would use, from the API's token-counting endpoint."""
        betas = self._betas.passed(request.betas)
        body = build_request(request, model, self._options, stream=False, betas=betas).body
        counted = {key: body[key] for key in _COUNT_FIELDS if key in body}
        headers = self._betas.headers(self._headers, betas)
        out = Outgoing(f"{self._api}/messages/count_tokens", headers, encode_body(counted))
        resp = await self.exchange(out, ctx)
        tokens = self._json(resp.body).get("input_tokens")
        if not isinstance(tokens, int):
            raise UpstreamError(f"{self.label}: the upstream sent a malformed token count")
        return tokens

    async def embed(
        self, request: EmbeddingRequest, model: str, ctx: CallContext
    ) -> EmbeddingResult:
        # The Messages API has no embeddings endpoint; fail before any network call.
        raise UnsupportedCapability("embeddings", model, param="model")
