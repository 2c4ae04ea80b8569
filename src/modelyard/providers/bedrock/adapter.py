"""The Bedrock Runtime adapter: Converse, ConverseStream and InvokeModel (Titan embeddings).

I/O in ``HttpAdapter`` (requests are signed last, in ``sign``); shapes live in ``codec``,
``response``, ``stream`` and ``embeddings``, authentication in ``signing``. Model ids (which
hold ``:`` and, for ARNs, ``/``) travel percent-encoded as one path segment, ``POST
{base}/model/{id}/converse``, and the URL is handed to the transport pre-encoded so that the
bytes on the wire are the bytes signed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Mapping
from typing import ClassVar, TypeVar
from urllib.parse import quote

from yarl import URL

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.core.errors import InvalidRequest
from modelyard.providers.base import CallContext, ProviderOptions, ProviderSettings
from modelyard.providers.bedrock import codec, embeddings, errors, signing
from modelyard.providers.bedrock.eventstream import EventStreamDecoder, Frame
from modelyard.providers.bedrock.options import BedrockOptions
from modelyard.providers.bedrock.response import ResponseInfo, parse_converse
from modelyard.providers.bedrock.stream import StreamTranslator
from modelyard.providers.errors import UpstreamFailure
from modelyard.providers.http_adapter import HttpAdapter, Outgoing, StreamCall
from modelyard.providers.transport import Transport

EVENT_STREAM = "application/vnd.amazon.eventstream"
# InvokeModel takes one text per call; this many run at once for a batch of inputs.
EMBED_CONCURRENCY = 8
_T = TypeVar("_T")


class BedrockProvider(HttpAdapter):
    Options: ClassVar[type[ProviderOptions]] = BedrockOptions
    SIGNS: ClassVar[bool] = True

    def __init__(self, settings: ProviderSettings, transport: Transport) -> None:
        super().__init__(settings, transport)
        options = BedrockOptions.model_validate(settings.options)
        self.region = signing.resolve_region(settings.options, os.environ)
        self.base_url = (settings.base_url or signing.endpoint(self.region)).rstrip("/")
        self._auth = signing.make_authenticator(
            settings.api_key, self.region, self.label, os.environ
        )
        self._build = codec.BuildOptions(settings.name, options.structured_output)
        self._headers = {"content-type": "application/json", **settings.headers}
        self._json_headers = {**self._headers, "accept": "application/json"}

    def url(self, model: str, operation: str) -> URL:
        """``{base}/model/{percent-encoded id}/{operation}``, exactly as it goes on the wire."""
        if not model:
            raise InvalidRequest("model: empty model id", param="model")
        return URL(f"{self.base_url}/model/{quote(model, safe='')}/{operation}", encoded=True)

    def failure(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamFailure:
        return errors.http_failure(status, headers, body)

    async def sign(self, request: Outgoing) -> Mapping[str, str]:
        # The signature covers the final URL bytes and body, so it is computed last.
        url = request.url if isinstance(request.url, URL) else URL(request.url, encoded=True)
        return await self._auth.headers_for(url, request.headers, request.body)

    async def chat(self, request: ChatRequest, model: str, ctx: CallContext) -> ChatResult:
        converse = codec.build_request(request, model, self._build)
        out = Outgoing(self.url(model, "converse"), self._json_headers, converse.encode())
        resp = await self.exchange(out, ctx)
        info = ResponseInfo(
            converse.json_tool, self.label, model, resp.headers.get("x-amzn-requestid")
        )
        return parse_converse(self._json(resp.body), info)

    def stream_call(self, request: ChatRequest, model: str, ctx: CallContext) -> StreamCall[Frame]:
        converse = codec.build_request(request, model, self._build)
        headers = {**self._headers, "accept": EVENT_STREAM}
        out = Outgoing(self.url(model, "converse-stream"), headers, converse.encode())
        translator = StreamTranslator(converse.json_tool, self.label)
        return StreamCall(out, EventStreamDecoder(self.label), translator)

    async def embed(
        self, request: EmbeddingRequest, model: str, ctx: CallContext
    ) -> EmbeddingResult:
        calls = embeddings.titan_calls(request, model)
        url = self.url(model, "invoke")
        limit = asyncio.Semaphore(EMBED_CONCURRENCY)

        async def one(call: embeddings.TitanCall) -> tuple[list[float], int]:
            async with limit:
                resp = await self.exchange(Outgoing(url, self._json_headers, call.body), ctx)
            return embeddings.parse_titan(resp.body, self.label)

        parts = await _all_or_nothing([one(call) for call in calls])
        return embeddings.combine(parts, model)


async def _all_or_nothing(jobs: list[Awaitable[_T]]) -> list[_T]:
    """Results in order; on the first failure the other jobs are cancelled and it is raised."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
