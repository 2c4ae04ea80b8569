"""The models use case: what a client may send as ``model``."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.routing import Deployment
from modelyard.services.gateway import Gateway


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: str
    created: int
    deployment: Deployment


class ModelService:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def list(self) -> list[ModelEntry]:
        table = self._gateway.table
        return [self._entry(table.resolve(name)) for name in sorted(table.names)]

    def get(self, model: str) -> ModelEntry:
        return self._entry(self._gateway.table.resolve(model))

    def _entry(self, deployment: Deployment) -> ModelEntry:
        return ModelEntry(deployment.name, self._gateway.started_at, deployment)
