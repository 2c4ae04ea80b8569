"""Deployments: the stable names clients send as ``model``, each with ordered targets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import ModelNotFound
from modelyard.core.timeouts import CallTimeouts

if TYPE_CHECKING:
    from modelyard.routing.learned import LearnedRouting
    from modelyard.routing.semantic import SemanticRouting


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    budget_s: float = 60.0


@dataclass(frozen=True, slots=True, eq=False)  # identity: two targets may look alike
class Target:
    provider: str
    model: str
    params: Mapping[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    # Overrides the provider's timeouts for this target only; None keeps the provider's.
    timeouts: CallTimeouts | None = None

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class Shadow:
    """A candidate target that receives a sample of a deployment's requests in the background."""

    target: Target
    percent: float
    max_in_flight: int = 8


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str
    targets: tuple[Target, ...]
    description: str | None = None
    # A name in the strategy registry (``routing.router.strategies``): a built-in or a plugin.
    strategy: str = "failover"
    sticky_header: str | None = None
    retry: RetryPolicy = RetryPolicy()
    shadow: Shadow | None = None
    # Responses API: "omit" (leave hosted tools out and disclose it) or "refuse" (a 400).
    hosted_tools: str = "omit"
    # The learned router of a deployment whose strategy is ``learned`` (routing/learned.py).
    learned: LearnedRouting | None = None
    # The rules of a deployment whose strategy is ``semantic`` (routing/semantic.py).
    semantic: SemanticRouting | None = None


class RoutingTable:
    """An immutable snapshot; a reload builds a new table and swaps it in whole."""

    def __init__(self, deployments: Mapping[str, Deployment]) -> None:
        self._deployments = dict(deployments)

    def resolve(self, name: str) -> Deployment:
        deployment = self._deployments.get(name)
        if deployment is None:
            raise ModelNotFound(name, list(self._deployments))
        return deployment

    @property
    def names(self) -> list[str]:
        return list(self._deployments)

    def get(self, name: str) -> Deployment | None:
        return self._deployments.get(name)
