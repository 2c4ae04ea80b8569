"""Train a learned router on routing data and evaluate one on held-out data.

Training splits by *source* (one CSV file is one MMLU subject): a seeded share of the sources is
held out and named in the artifact's provenance, and ``evaluate`` leaves out every source the
router was trained on, so a router is judged only on subjects it never saw.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from modelyard.catalog.models import resolve
from modelyard.catalog.pricing import base_rate
from modelyard.core.errors import InvalidRequest
from modelyard.evals import routing_metrics as metrics
from modelyard.evals.routing_data import Item, RoutingData, load_dir
from modelyard.services import routers

# Where a routing-data model column is looked up for its list price, in this order.
PRICE_PROVIDERS: Final = ("openai", "together", "groq")


@dataclass(frozen=True, slots=True)
class TrainResult:
    model: routers.RouterModel
    trained_sources: list[str]
    held_out_sources: list[str]


def train_from_dir(
    folder: Path,
    holdout: float = 0.0,
    seed: int = 0,
    models: tuple[str | None, str | None] = (None, None),
    text_features: str = "words",
    lsa_dims: int = 0,
    label: str = "gain",
) -> TrainResult:
    """A router trained on ``folder``'s routing data, ``holdout`` of its sources left out."""
    data = load_dir(folder, *models)
    return train_from_data(data, str(folder), holdout, seed, text_features, lsa_dims, label)


def train_from_data(
    data: RoutingData,
    origin: str,
    holdout: float = 0.0,
    seed: int = 0,
    text_features: str = "words",
    lsa_dims: int = 0,
    label: str = "gain",
) -> TrainResult:
    """A router trained on ``data`` (from ``origin``: a folder, eval run ids), ``holdout`` of
    its sources left out and named in the provenance."""
    if not 0.0 <= holdout < 1.0:
        raise InvalidRequest("the held-out share must be in [0, 1)", param="--holdout")
    sources = data.sources()
    random.Random(seed).shuffle(sources)  # noqa: S311  # a data split, not a secret
    held = sorted(sources[: int(len(sources) * holdout)])
    train_items = [i for i in data.items if i.source not in set(held)]
    trained = sorted({i.source for i in train_items})
    header = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": origin,
        "data_sha256": _digest(train_items),
        "weak_model": data.weak_model,
        "strong_model": data.strong_model,
        "trained_sources": trained,
        "held_out_sources": held,
        "seed": seed,
    }
    labelled = [(i.prompt, i.strong > i.weak, i.strong != i.weak) for i in train_items]
    model = routers.train(
        labelled, header, seed=seed, text_features=text_features, lsa_dims=lsa_dims, label=label
    )
    return TrainResult(model, trained, held)


def _digest(items: list[Item]) -> str:
    h = hashlib.sha256()
    for i in items:
        h.update(f"{i.source}\0{i.prompt}\0{i.weak}\0{i.strong}\n".encode())
    return h.hexdigest()


@dataclass(slots=True)
class Evaluation:
    router: str
    data: str
    weak_model: str
    strong_model: str
    figures: dict[str, Any]
    ci: metrics.Interval
    curve: metrics.Curve
    excluded_sources: list[str] = field(default_factory=list)
    prices: dict[str, float | None] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            **self.figures,
            "router": self.router,
            "data": self.data,
            "weak_model": self.weak_model,
            "strong_model": self.strong_model,
            "apgr_minus_random_ci95": [self.ci.low, self.ci.high],
            "apgr_minus_random_mean": self.ci.mean,
            "bootstrap_resamples": self.ci.resamples,
            "beats_random": bool(self.ci.low > 0),
            "excluded_trained_sources": self.excluded_sources,
            "prices_per_million": self.prices,
            "sweep": sweep(self.curve),
        }


def evaluate(
    router_path: Path, folder: Path, resamples: int = 1000, include_trained: bool = False
) -> Evaluation:
    """The router at ``router_path`` on ``folder``'s routing data (its training sources left
    out unless ``include_trained``)."""
    model = routers.read(router_path)
    head = model.header
    weak, strong = head.get("weak_model"), head.get("strong_model")
    data = _load_like(folder, weak, strong)
    trained = set() if include_trained else set(head.get("trained_sources", ()))
    items = [i for i in data.items if i.source not in trained]
    if not items:
        raise InvalidRequest(
            f"every item in {folder} comes from a source the router was trained on",
            param="--data",
        )
    scores = np.asarray(routers.score_prompts(model, [i.prompt for i in items]))
    w = np.asarray([i.weak for i in items])
    s = np.asarray([i.strong for i in items])
    prices = {"weak": price_of(data.weak_model), "strong": price_of(data.strong_model)}
    figures = metrics.summary(scores, w, s, (prices["weak"], prices["strong"]))
    return Evaluation(
        router=f"{router_path} (version {model.version})",
        data=str(folder),
        weak_model=data.weak_model,
        strong_model=data.strong_model,
        figures=figures,
        ci=metrics.paired_bootstrap(scores, w, s, resamples=resamples),
        curve=metrics.curve(scores, w, s),
        excluded_sources=sorted(trained & set(data.sources())),
        prices=prices,
    )


def _load_like(folder: Path, weak: Any, strong: Any) -> RoutingData:
    """The data read with the router's weak/strong columns when the data has them."""
    try:
        return load_dir(folder, weak, strong)
    except InvalidRequest as exc:
        if exc.param not in ("--weak", "--strong"):
            raise
        return load_dir(folder)


def price_of(model: str) -> float | None:
    """A model column's list price, dollars per million tokens (input + output averaged)."""
    for provider in PRICE_PROVIDERS:
        info = resolve(provider, model)
        prices = info.list_prices() if info is not None else None
        if prices is not None:
            return (float(base_rate(prices.input)) + float(base_rate(prices.output))) / 2
    return None


def sweep(c: metrics.Curve, points: int = 20) -> list[dict[str, float]]:
    """Quality and PGR at ``points + 1`` evenly spaced shares of strong calls."""
    pgr = c.pgr()
    out = []
    for j in range(points + 1):
        k = round(j * c.n / points)
        out.append(
            {
                "strong_share": float(c.shares[k]),
                "quality": float(c.quality[k]),
                "pgr": float(pgr[k]),
            }
        )
    return out
