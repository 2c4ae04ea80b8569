"""The composition root of the services: providers, the routing table and the catalog.

One ``Gateway`` per process, built by ``create_app`` from settings; nothing global.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from modelyard.catalog import Catalog
from modelyard.config import Settings
from modelyard.providers.base import Provider
from modelyard.providers.registry import provider_types
from modelyard.providers.transport import Transport
from modelyard.routing import Deployment, RoutingTable, Target
from modelyard.services.build import build_components


@dataclass(frozen=True, slots=True)
class Resolved:
    """A deployment resolved to the target that will serve it."""

    deployment: Deployment
    target: Target
    provider: Provider


class Gateway:
    def __init__(self, settings: Settings, local_base_url: str | None) -> None:
        components = build_components(settings, local_base_url)
        self.settings = settings
        self.local_base_url = local_base_url
        self.table: RoutingTable = components.table
        self.catalog: Catalog = components.catalog
        self.transport = Transport()
        factories = provider_types()
        self.providers: dict[str, Provider] = {
            name: factories[ps.type](ps, self.transport)
            for name, ps in components.providers.items()
        }
        self.started_at = int(time.time())

    def resolve(self, model: str) -> list[Resolved]:
        """Candidates for a requested model, in the order to try them."""
        deployment = self.table.resolve(model)
        return [
            Resolved(deployment, target, self.providers[target.provider])
            for target in self.table.candidates(deployment)
        ]

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        await self.transport.aclose()
