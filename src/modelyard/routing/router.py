"""From a deployment and a request to the ordered list of targets to try.

Order comes from the deployment's strategy, looked up by name in the strategy registry (the
built-ins below, plus ``modelyard.strategies`` entry points through ``core.plugins``); targets
that cannot serve the request are filtered out first (the caller says why a target cannot);
targets whose breaker is open go last, so they are tried only when nothing healthy is left and
never waited on.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol, cast

from modelyard.core.chat import ChatRequest
from modelyard.core.errors import UnsupportedCapability
from modelyard.core.plugins import EntryPointLike, PluginError, PluginKind, Plugins
from modelyard.routing.health import HealthBoard
from modelyard.routing.learned import Learned
from modelyard.routing.semantic import Semantic
from modelyard.routing.table import Deployment, Target


# Why a target cannot serve this request (e.g. "image input"), or None when it can.
class Incapable(NamedTuple):
    """What a target cannot do for a request, and the request field that asks for it."""

    capability: str
    param: str | None = None


# What a target cannot do for the request (a reason, or with its field), or None: it can.
CapabilityCheck = Callable[[Target], "str | Incapable | None"]
# A target's price per million tokens (input + output), or None when unknown.
PriceOf = Callable[[Target], float | None]


@dataclass(frozen=True, slots=True)
class PlanRequest:
    deployment: Deployment
    sticky_key: str | None = None
    capable: CapabilityCheck | None = None
    price_of: PriceOf | None = None
    # For strategies that read the request (learned, semantic): the request, whether the
    # client opted out of routing (``x-modelyard-routing: off``), and where a strategy writes
    # its decision for the ledger and the access log.
    request: ChatRequest | None = None
    opt_out: bool = False
    note: Callable[[str], None] | None = None


class Strategy(Protocol):
    """The contract of a routing strategy: order the targets that can serve ``req`` (at least
    two), best first. ``health`` has each target's breaker and time-to-first-token average;
    ``rng`` is the router's own random source."""

    def order(
        self, targets: list[Target], req: PlanRequest, health: HealthBoard, rng: random.Random
    ) -> list[Target]: ...


class Failover:
    """The configured order."""

    def order(
        self, targets: list[Target], req: PlanRequest, health: HealthBoard, rng: random.Random
    ) -> list[Target]:
        return targets


class Weighted:
    """One target drawn by weight (by the sticky key's hash when there is one), then the rest
    by falling weight."""

    def order(
        self, targets: list[Target], req: PlanRequest, health: HealthBoard, rng: random.Random
    ) -> list[Target]:
        pool = [t for t in targets if t.weight > 0]
        total = sum(t.weight for t in pool)
        if not pool or total <= 0:
            return list(targets)
        key = req.sticky_key
        point = (_sticky_point(key) if key is not None else rng.random()) * total
        chosen = pool[-1]
        for t in pool:
            point -= t.weight
            if point < 0:
                chosen = t
                break
        rest = sorted((t for t in targets if t is not chosen), key=lambda t: -t.weight)
        return [chosen, *rest]


class Latency:
    """Fastest time to first token first; unmeasured targets before all, so each gets measured."""

    def order(
        self, targets: list[Target], req: PlanRequest, health: HealthBoard, rng: random.Random
    ) -> list[Target]:
        return sorted(targets, key=lambda t: health.of(t.key).ttft_ewma or 0.0)


class Cost:
    """Cheapest first; targets of unknown price last."""

    def order(
        self, targets: list[Target], req: PlanRequest, health: HealthBoard, rng: random.Random
    ) -> list[Target]:
        price = req.price_of or (lambda _t: None)
        return sorted(targets, key=lambda t: _unknown_last(price(t)))


BUILTIN_STRATEGIES: Final[Mapping[str, Strategy]] = {
    "failover": Failover(),
    "weighted": Weighted(),
    "latency": Latency(),
    "cost": Cost(),
    "learned": Learned(),
    "semantic": Semantic(),
}


def _accept(obj: object) -> Strategy | None:
    if isinstance(obj, type) or not callable(getattr(obj, "order", None)):
        return None
    return cast(Strategy, obj)


STRATEGIES = PluginKind(
    "modelyard.strategies",
    "routing strategy",
    "a strategy: an object with order(targets, request, health, rng)",
    _accept,
)


def strategies(entries: Iterable[EntryPointLike] | None = None) -> Plugins[Strategy]:
    """Every routing strategy by name (``entries`` replaces the installed entry points)."""
    return Plugins(STRATEGIES, BUILTIN_STRATEGIES, entries)


def check_strategy(name: str) -> None:
    """Raise ``ValueError`` (fit for a config error) unless ``name`` is a usable strategy."""
    if name in BUILTIN_STRATEGIES:
        return
    try:
        strategies().get(name)
    except PluginError as exc:
        raise ValueError(str(exc)) from exc


class Router:
    def __init__(
        self,
        health: HealthBoard,
        rng: random.Random | None = None,
        registry: Plugins[Strategy] | None = None,
    ) -> None:
        self.health = health
        self._rng = rng or random.Random()  # noqa: S311  # routing, not cryptography
        self._strategies = registry if registry is not None else strategies()

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
            raise refusal(reasons[0][1] or "this request", req.deployment.name)
        return fit

    def _order(self, req: PlanRequest, targets: list[Target]) -> list[Target]:
        strategy = self._strategies.get(req.deployment.strategy)
        return strategy.order(targets, req, self.health, self._rng)


def refusal(why: str | Incapable, deployment: str) -> UnsupportedCapability:
    """The error for a request no target of ``deployment`` can serve, ``why`` being the
    reason of its first target."""
    if isinstance(why, Incapable):
        return UnsupportedCapability(why.capability, deployment, param=why.param)
    return UnsupportedCapability(why, deployment)


def _sticky_point(key: str) -> float:
    """A stable point in [0, 1) for a sticky key: the same conversation, the same target."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _unknown_last(price: float | None) -> float:
    return float("inf") if price is None else price
