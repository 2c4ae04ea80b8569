"""The models use case: what a client may send as ``model``, and what the catalog knows of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard.catalog import CAPABILITIES, ModelPrices, Tiered
from modelyard.routing import Deployment, Target
from modelyard.services.gateway import Gateway


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: str
    created: int
    deployment: Deployment
    # Catalog facts of the deployment and its targets, served under a namespaced key.
    facts: dict[str, Any]


class ModelService:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def list(self) -> list[ModelEntry]:
        table = self._gateway.table
        return [self._entry(table.resolve(name)) for name in sorted(table.names)]

    def get(self, model: str) -> ModelEntry:
        return self._entry(self._gateway.table.resolve(model))

    def _entry(self, deployment: Deployment) -> ModelEntry:
        facts = {
            "deployment": deployment.name,
            "description": deployment.description,
            "strategy": deployment.strategy,
            "targets": [self._target(t) for t in deployment.targets],
        }
        return ModelEntry(deployment.name, self._gateway.started_at, deployment, facts)

    def _target(self, target: Target) -> dict[str, Any]:
        """One target's facts; unknown facts are null. Prices are decimal strings of dollars
        per million tokens (exact, never floats), with the config's overrides applied."""
        provider = self._gateway.providers.get(target.provider)
        provider_type = provider.settings.type if provider is not None else ""
        info = self._gateway.catalog.lookup(provider_type, target.model)
        prices = self._gateway.catalog.price(target.provider, provider_type, target.model)
        return {
            "provider": target.provider,
            "model": target.model,
            "catalog_id": info.id if info else None,
            "vendor": info.vendor if info else None,
            "context_window": info.context_window if info else None,
            "max_output": info.max_output if info else None,
            "input_modalities": list(info.input_modalities)
            if info and info.input_modalities is not None
            else None,
            "capabilities": {c: info.capability(c) if info else None for c in CAPABILITIES},
            "prices": prices_json(prices),
        }


def prices_json(prices: ModelPrices | None) -> dict[str, Any] | None:
    """Dollars per million tokens as decimal strings; a tiered rate shows its base and its
    ``tiers`` (the rate for a request whose input is above each threshold)."""
    if prices is None:
        return None
    out: dict[str, Any] = {"source": prices.source}
    tiers: dict[str, list[dict[str, Any]]] = {}
    for name, rate in prices.rates().items():
        if isinstance(rate, Tiered):
            out[name] = f"{rate.base:f}"
            tiers[name] = [{"above_input_tokens": t, "price": f"{p:f}"} for t, p in rate.tiers]
        else:
            out[name] = f"{rate:f}"
    if tiers:
        out["tiers"] = tiers
    return out
