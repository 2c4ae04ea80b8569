"""From a deployment and a request to the ordered list of targets to try.

Order comes from the deployment's strategy; targets that cannot serve the request are filtered
out first (the caller says why a target cannot); targets whose breaker is open go last, so they
are tried only when nothing healthy is left and never waited on.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelyard.core.errors import UnsupportedCapability
from modelyard.routing.health import HealthBoard
from modelyard.routing.table import Deployment, Target

# Why a target cannot serve this request (e.g. "image input"), or None when it can.
CapabilityCheck = Callable[[Target], str | None]
# A target's price per million tokens (input + output), or None when unknown.
PriceOf = Callable[[Target], float | None]


@dataclass(frozen=True, slots=True)
class PlanRequest:
    deployment: Deployment
    sticky_key: str | None = None
    capable: CapabilityCheck | None = None
    price_of: PriceOf | None = None


class Router:
    def __init__(self, health: HealthBoard, rng: random.Random | None = None) -> None:
        self.health = health
        self._rng = rng or random.Random()  # noqa: S311  # routing, not cryptography

    def plan(self, req: PlanRequest) -> list[Target]:
        targets = list(req.deployment.targets)
        if len(targets) == 1:
            # Most deployments have one target: nothing to order, only capability to check.
            if req.capable is not None:
                self._filter(req, targets)
            return targets
        if req.capable is not None:
            targets = self._filter(req, targets)
        ordered = self._order(req, targets)
        healthy = [t for t in ordered if self.health.of(t.key).state == "closed"]
        others = [t for t in ordered if self.health.of(t.key).state != "closed"]
        return healthy + others

    def _filter(self, req: PlanRequest, targets: list[Target]) -> list[Target]:
        assert req.capable is not None
        reasons = [(t, req.capable(t)) for t in targets]
        fit = [t for t, why in reasons if why is None]
        if not fit:
            raise UnsupportedCapability(reasons[0][1] or "this request", req.deployment.name)
        return fit

    def _order(self, req: PlanRequest, targets: list[Target]) -> list[Target]:
        strategy = req.deployment.strategy
        if strategy == "weighted":
            return self._weighted(targets, req.sticky_key)
        if strategy == "latency":
            # Unmeasured targets first, so every target gets measured.
            return sorted(targets, key=lambda t: self.health.of(t.key).ttft_ewma or 0.0)
        if strategy == "cost":
            price = req.price_of or (lambda _t: None)
            return sorted(targets, key=lambda t: _unknown_last(price(t)))
        return targets

    def _weighted(self, targets: Sequence[Target], sticky_key: str | None) -> list[Target]:
        pool = [t for t in targets if t.weight > 0]
        total = sum(t.weight for t in pool)
        if not pool or total <= 0:
            return list(targets)
        point = _sticky_point(sticky_key) if sticky_key is not None else self._rng.random()
        point *= total
        chosen = pool[-1]
        for t in pool:
            point -= t.weight
            if point < 0:
                chosen = t
                break
        rest = sorted((t for t in targets if t is not chosen), key=lambda t: -t.weight)
        return [chosen, *rest]


def _sticky_point(key: str) -> float:
    """A stable point in [0, 1) for a sticky key: the same conversation, the same target."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _unknown_last(price: float | None) -> float:
    return float("inf") if price is None else price
