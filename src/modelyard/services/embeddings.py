"""The embeddings use case, with the same failover and retries as chat."""

from __future__ import annotations

import random

from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.providers.base import CallContext
from modelyard.routing import PlanRequest
from modelyard.services.attempts import AttemptLoop
from modelyard.services.chat import Served
from modelyard.services.gateway import Gateway, Resolved


class EmbeddingService:
    def __init__(self, gateway: Gateway, rng: random.Random | None = None) -> None:
        self._gateway = gateway
        self._rng = rng or random.Random()  # noqa: S311  # jitter, not cryptography

    async def embed(
        self, request: EmbeddingRequest, ctx: CallContext
    ) -> tuple[EmbeddingResult, Served]:
        deployment = self._gateway.table.resolve(request.model)
        plan = self._gateway.plan(PlanRequest(deployment, price_of=self._gateway.price_of))

        async def call(chosen: Resolved) -> EmbeddingResult:
            return await chosen.provider.embed(request, chosen.target.model, ctx)

        outcome = await AttemptLoop(plan, self._rng).run(call)
        chosen = outcome.chosen
        served = Served(
            chosen.deployment.name, chosen.provider.name, chosen.target.model, outcome.attempts
        )
        return outcome.value, served
