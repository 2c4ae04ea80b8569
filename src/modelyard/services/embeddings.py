"""The embeddings use case."""

from __future__ import annotations

from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.providers.base import CallContext
from modelyard.services.chat import Served
from modelyard.services.gateway import Gateway


class EmbeddingService:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def embed(
        self, request: EmbeddingRequest, ctx: CallContext
    ) -> tuple[EmbeddingResult, Served]:
        chosen = self._gateway.resolve(request.model)[0]
        result = await chosen.provider.embed(request, chosen.target.model, ctx)
        return result, Served(chosen.deployment.name, chosen.provider.name, chosen.target.model)
