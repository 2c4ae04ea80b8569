"""The composition root of the services: providers, the routing table, the router, the catalog.

One ``Gateway`` per process, built by ``create_app`` from settings; nothing global.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.catalog import Catalog, ModelInfo, base_rate, cost_micros
from modelyard.config import Settings
from modelyard.core.chat import Usage
from modelyard.providers.base import Provider
from modelyard.providers.registry import provider_types
from modelyard.providers.transport import Transport
from modelyard.routing import (
    BreakerSettings,
    Deployment,
    HealthBoard,
    PlanRequest,
    Router,
    RoutingTable,
    Target,
    TargetHealth,
)
from modelyard.services.build import build_components

if TYPE_CHECKING:
    from modelyard.routing.model import RouterModel


@dataclass(frozen=True, slots=True)
class Resolved:
    """A deployment resolved to one target that may serve it, with what every request to the
    target needs of it looked up once per config: its breaker (kept across reloads by target
    key) and its catalog facts (for the capability checks)."""

    deployment: Deployment
    target: Target
    provider: Provider
    health: TargetHealth
    info: ModelInfo | None = None


class Gateway:
    def __init__(
        self,
        settings: Settings,
        local_base_url: str | None,
        previous: Gateway | None = None,
        routers: Mapping[str, RouterModel] | None = None,
    ) -> None:
        """With ``previous`` (a reload), the connection pool and target health carry over.
        ``routers``: learned routers read beforehand, by deployment (see ``build_components``)."""
        components = build_components(settings, local_base_url, routers)
        self.settings = settings
        self.local_base_url = local_base_url
        self.table: RoutingTable = components.table
        self.catalog: Catalog = components.catalog
        self.policies = components.policies  # guardrails, run by services.guards' stages
        self.transport: Transport = previous.transport if previous else Transport()
        factories = provider_types()
        self.providers: dict[str, Provider] = {
            name: factories[ps.type](ps, self.transport)
            for name, ps in components.providers.items()
        }
        breaker = settings.routing.breaker
        self.breaker = BreakerSettings(
            breaker.failures,
            breaker.error_rate,
            breaker.min_requests,
            breaker.window_s,
            breaker.cooldown_s,
        )
        self.router: Router
        self.started_at: int
        if previous is not None:
            # Breaker state and latency history belong to the targets, not to the config: the
            # board carries over, and takes this config's settings when it is served
            # (``take_over``), not before: a reload refused after this leaves them as they were.
            self.router = previous.router
            self.started_at = previous.started_at
        else:
            self.router = Router(HealthBoard(self.breaker, settings.routing.latency_alpha))
            self.started_at = int(time.time())
        # Built once per config, not per request; keyed by target identity.
        self._resolved: dict[int, Resolved] = {
            id(target): self._resolve(dep, target)
            for dep in (self.table.resolve(name) for name in self.table.names)
            for target in dep.targets
        }

    def take_over(self) -> None:
        """This config is served from now on: the targets' breakers and latency averages,
        carried over from the previous config, take its ``routing.breaker`` and
        ``routing.latency_alpha``."""
        self.router.health.configure(self.breaker, self.settings.routing.latency_alpha)

    def _resolve(self, deployment: Deployment, target: Target) -> Resolved:
        provider = self.providers[target.provider]
        info = self.catalog.lookup(provider.settings.type, target.model)
        return Resolved(deployment, target, provider, self.router.health.of(target.key), info)

    def resolved(self, target: Target) -> Resolved:
        """``target``, one of this config's deployments' targets, resolved."""
        return self._resolved[id(target)]

    def candidate(self, deployment: Deployment, target: Target) -> Resolved:
        """A target outside the deployment's plan (a shadow candidate), resolved now."""
        return self._resolve(deployment, target)

    def plan(self, request: PlanRequest) -> list[Resolved]:
        """Targets of a deployment in the order to try them."""
        resolved = self._resolved
        return [resolved[id(target)] for target in self.router.plan(request)]

    def price_of(self, target: Target) -> float | None:
        """Dollars per million input plus output tokens (base tier), when known: the config's
        override, else the catalog's list price; a float only to order targets by."""
        provider = self.providers.get(target.provider)
        if provider is None:
            return None
        prices = self.catalog.price(target.provider, provider.settings.type, target.model)
        if prices is None:
            return None
        return float(base_rate(prices.input) + base_rate(prices.output))

    def cost_of(self, provider: str, model: str, usage: Usage | None) -> int | None:
        """Micro-dollars for ``usage`` at the target's prices (config override, else the
        catalog's list price); None when usage or price is unknown."""
        if usage is None:
            return None
        found = self.providers.get(provider)
        prices = self.catalog.price(provider, found.settings.type, model) if found else None
        return None if prices is None else cost_micros(prices, usage)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        await self.transport.aclose()
