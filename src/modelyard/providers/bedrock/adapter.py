"""The Bedrock Runtime adapter: Converse, ConverseStream and InvokeModel (Titan embeddings).

I/O only, through the shared transport; shapes live in ``codec``, ``response``, ``stream`` and
``embeddings``, authentication in ``signing``. Model ids (which hold ``:`` and, for ARNs, ``/``)
travel percent-encoded as one path segment, ``POST {base}/model/{id}/converse``, and the URL is
handed to the transport pre-encoded so that the bytes on the wire are the bytes signed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import ClassVar, TypeVar
from urllib.parse import quote

from yarl import URL

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.core.errors import InvalidRequest, UpstreamConnectionError
from modelyard.core.events import StreamEvent
from modelyard.providers.base import CallContext, Provider, ProviderSettings
from modelyard.providers.bedrock import codec, embeddings, errors, signing
from modelyard.providers.bedrock.eventstream import EventStreamDecoder
from modelyard.providers.bedrock.response import ResponseInfo, parse_converse
from modelyard.providers.bedrock.stream import StreamTranslator
from modelyard.providers.transport import RawResponse, Transport

EVENT_STREAM = "application/vnd.amazon.eventstream"
# InvokeModel takes one text per call; this many run at once for a batch of inputs.
EMBED_CONCURRENCY = 8
_T = TypeVar("_T")


class BedrockProvider(Provider):
    OPTIONS: ClassVar[Mapping[str, str]] = {
        "region": "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then us-east-1)",
        "structured_output": "how JSON answers are asked for: tool (default) or native "
        "(outputConfig.textFormat, newer models only)",
    }

    @classmethod
    def check_options(cls, options: Mapping[str, object]) -> list[tuple[str, str]]:
        problems = super().check_options(options)
        mode = options.get("structured_output", "tool")
        if mode not in ("tool", "native"):
            problems.append(("structured_output", f"must be tool or native, got {mode!r}"))
        region = options.get("region")
        if region is not None and not (isinstance(region, str) and region):
            problems.append(("region", "must be a region name such as us-east-1"))
        return problems

    def __init__(self, settings: ProviderSettings, transport: Transport) -> None:
        super().__init__(settings, transport)
        problems = self.check_options(settings.options)
        if problems:
            raise ValueError(
                f"provider {settings.name!r}: options.{problems[0][0]}: {problems[0][1]}"
            )
        self._label = f"provider {settings.name!r}"
        self.region = signing.resolve_region(settings.options, os.environ)
        self.base_url = (settings.base_url or signing.endpoint(self.region)).rstrip("/")
        self._auth = signing.make_authenticator(
            settings.api_key, self.region, self._label, os.environ
        )
        mode: codec.StructuredOutput = (
            "native" if settings.options.get("structured_output") == "native" else "tool"
        )
        self._build = codec.BuildOptions(settings.name, mode)
        self._headers = {"content-type": "application/json", **settings.headers}

    def url(self, model: str, operation: str) -> URL:
        """``{base}/model/{percent-encoded id}/{operation}``, exactly as it goes on the wire."""
        if not model:
            raise InvalidRequest("model: empty model id", param="model")
        return URL(f"{self.base_url}/model/{quote(model, safe='')}/{operation}", encoded=True)

    async def chat(self, request: ChatRequest, model: str, ctx: CallContext) -> ChatResult:
        converse = codec.build_request(request, model, self._build)
        resp = await self._post(self.url(model, "converse"), converse.encode(), ctx)
        if not 200 <= resp.status < 300:
            raise errors.classify_http(resp.status, resp.headers, resp.body, self._label)
        info = ResponseInfo(
            converse.json_tool, self._label, model, resp.headers.get("x-amzn-requestid")
        )
        return parse_converse(self._json(resp.body), info)

    async def stream(
        self, request: ChatRequest, model: str, ctx: CallContext
    ) -> AsyncIterator[StreamEvent]:
        converse = codec.build_request(request, model, self._build)
        url, body = self.url(model, "converse-stream"), converse.encode()
        headers = await self._auth.headers_for(url, {**self._headers, "accept": EVENT_STREAM}, body)
        upstream = await self.transport.open_stream(
            url, headers, body, self.timeouts(ctx), self._label
        )
        try:
            if not 200 <= upstream.status < 300:
                payload = await upstream.read_all()
                raise errors.classify_http(upstream.status, upstream.headers, payload, self._label)
            decoder = EventStreamDecoder(self._label)
            translator = StreamTranslator(converse.json_tool, self._label)
            async for chunk in upstream.chunks():
                for frame in decoder.feed(chunk):
                    for event in translator.frame(frame):
                        yield event
                    if translator.done:
                        return
            raise UpstreamConnectionError(
                f"{self._label}: the stream ended before messageStop and metadata"
            )
        finally:
            upstream.close()

    async def embed(
        self, request: EmbeddingRequest, model: str, ctx: CallContext
    ) -> EmbeddingResult:
        calls = embeddings.titan_calls(request, model)
        url = self.url(model, "invoke")
        limit = asyncio.Semaphore(EMBED_CONCURRENCY)

        async def one(call: embeddings.TitanCall) -> tuple[list[float], int]:
            async with limit:
                resp = await self._post(url, call.body, ctx)
            if not 200 <= resp.status < 300:
                raise errors.classify_http(resp.status, resp.headers, resp.body, self._label)
            return embeddings.parse_titan(resp.body, self._label)

        parts = await _all_or_nothing([one(call) for call in calls])
        return embeddings.combine(parts, model)

    async def _post(self, url: URL, body: bytes, ctx: CallContext) -> RawResponse:
        headers = await self._auth.headers_for(
            url, {**self._headers, "accept": "application/json"}, body
        )
        return await self.transport.post(url, headers, body, self.timeouts(ctx), self._label)


async def _all_or_nothing(jobs: list[Awaitable[_T]]) -> list[_T]:
    """Results in order; on the first failure the other jobs are cancelled and it is raised."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
