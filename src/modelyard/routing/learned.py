"""The ``learned`` strategy: send a request to the cheap target unless the router's score says
the strong one is needed.

A deployment using it carries a :class:`LearnedRouting` (built from its config by
``services/build.py``, so a config reload re-reads the artifact: that is the hot reload). For
each request the router scores the strong target's expected gain (or, for artifacts trained
before, P(strong needed)) from the request (``routing/model.py``) and compares it with a
threshold: given explicitly, derived from a target share of strong calls
through the score quantiles the artifact keeps from training, or from a mode (``quality``,
``balanced``, ``cost``: shares 0.7, 0.45, 0.2). The chosen target goes first and the others
follow, so failover still applies. The decision (``learned:<mode>:<weak|strong>:<score>``) is
handed to ``PlanRequest.note`` for the ledger and the access log. A request whose opt-out
header says ``off`` keeps the configured order (noted ``learned:off``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from modelyard.routing.health import HealthBoard
from modelyard.routing.table import Target

if TYPE_CHECKING:
    # Not at run time: numpy is imported only when a deployment loads a router artifact.
    from modelyard.routing.model import RouterModel
    from modelyard.routing.router import PlanRequest

Mode = Literal["quality", "balanced", "cost"]
MODE_SHARES: Final[Mapping[str, float]] = {"quality": 0.7, "balanced": 0.45, "cost": 0.2}
OPT_OUT_HEADER: Final = "x-modelyard-routing"


@dataclass(frozen=True, slots=True)
class LearnedRouting:
    """A deployment's learned router: the model, the threshold, and which target is strong."""

    model: RouterModel
    threshold: float
    label: str  # the mode, "threshold" or "share", for the decision note
    strong: str  # the strong target's key (provider/model)


def threshold_for(
    model: RouterModel,
    mode: Mode = "balanced",
    threshold: float | None = None,
    strong_share: float | None = None,
) -> tuple[float, str]:
    """The score threshold (strong when the score is at or above it) and its label."""
    if threshold is not None:
        return threshold, "threshold"
    share = strong_share if strong_share is not None else MODE_SHARES[mode]
    label = "share" if strong_share is not None else mode
    quantiles: Sequence[float] = model.header.get("score_quantiles") or ()
    if len(quantiles) < 2:
        return 1.0 - share, label  # an artifact without quantiles: the share as a probability
    # quantiles[i] is the i-th of len-1 equal steps; the top ``share`` of scores go strong.
    position = (1.0 - share) * (len(quantiles) - 1)
    low = int(position)
    high = min(low + 1, len(quantiles) - 1)
    frac = position - low
    return float(quantiles[low] * (1 - frac) + quantiles[high] * frac), label


class Learned:
    """The strategy (registered as ``learned``); without a router it keeps the configured order."""

    def order(
        self, targets: list[Target], req: PlanRequest, health: HealthBoard, rng: random.Random
    ) -> list[Target]:
        routing = req.deployment.learned
        if routing is None or req.request is None:
            return targets
        if req.opt_out:
            _note(req, "learned:off")
            return targets
        score = routing.model.score(req.request)
        strong = next((t for t in targets if t.key == routing.strong), None)
        if strong is None:
            # The strong target cannot serve this request: the others, in order.
            _note(req, f"learned:{routing.label}:weak:{score:.3f}")
            return targets
        if score >= routing.threshold:
            _note(req, f"learned:{routing.label}:strong:{score:.3f}")
            return [strong, *(t for t in targets if t is not strong)]
        _note(req, f"learned:{routing.label}:weak:{score:.3f}")
        return [*(t for t in targets if t is not strong), strong]


def _note(req: PlanRequest, text: str) -> None:
    if req.note is not None:
        req.note(text)
