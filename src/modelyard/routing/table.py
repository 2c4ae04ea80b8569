"""Deployments: the stable names clients send as ``model``, each with ordered targets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.core.errors import ModelNotFound


@dataclass(frozen=True, slots=True)
class Target:
    provider: str
    model: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str
    targets: tuple[Target, ...]
    description: str | None = None


class RoutingTable:
    """An immutable snapshot; a reload builds a new table and swaps it in whole."""

    def __init__(self, deployments: Mapping[str, Deployment]) -> None:
        self._deployments = dict(deployments)

    def resolve(self, name: str) -> Deployment:
        deployment = self._deployments.get(name)
        if deployment is None:
            raise ModelNotFound(name, list(self._deployments))
        return deployment

    def candidates(self, deployment: Deployment) -> tuple[Target, ...]:
        """Targets in the order to try them (strategies beyond priority order come later)."""
        return deployment.targets

    @property
    def names(self) -> list[str]:
        return list(self._deployments)

    def get(self, name: str) -> Deployment | None:
        return self._deployments.get(name)
