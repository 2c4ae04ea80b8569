"""Learned routers as a use case: train one from labelled prompts, read one, score prompts,
keep trained ones in the store by name and content version, and read the ones a config names
before a gateway is built (``preload``: off the event loop, where the store is open).

The evaluation and training commands (``evals/routing_eval.py``) reach ``routing`` through
here; the artifact format and the learner are ``routing/model.py`` and ``routing/training.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from modelyard.config import ConfigError, ConfigIssue, Settings
from modelyard.core.errors import ModelyardError, NotFound
from modelyard.routing import features
from modelyard.routing.model import RouterModel, dumps, load, loads
from modelyard.store import Store, open_store
from modelyard.store.routers import NewRouter, RouterArtifacts, StoredRouter

T = TypeVar("T")

__all__ = [
    "RouterModel",
    "StoredRouter",
    "dumps",
    "load",
    "loads",
    "on_store",
    "preload",
    "score_prompts",
    "store_router",
    "stored_router",
    "stored_routers",
    "train",
]


def train(
    labelled: Sequence[tuple[str, bool] | tuple[str, bool, bool]],
    header: Mapping[str, Any],
    c: float | None = None,
    seed: int = 0,
    text_features: str = "words",
    lsa_dims: int = 0,
    label: str = "needed",
) -> RouterModel:
    """A router from ``(prompt, strong model needed[, the two models differed])`` tuples;
    ``header`` is its provenance; ``text_features`` is ``words`` or ``chars``;
    ``lsa_dims`` > 0: LSA first; ``label`` ``needed`` or ``pairwise`` (``routing/training.py``)."""
    from modelyard.routing.training import Example, fit

    examples = [
        Example(row[0], features.facts(row[0]), row[1], row[2] if len(row) > 2 else True)
        for row in labelled
    ]
    return fit(
        examples,
        header,
        c=c,
        seed=seed,
        text_features=text_features,
        lsa_dims=lsa_dims,
        label=label,
    )


def score_prompts(model: RouterModel, prompts: Sequence[str]) -> list[float]:
    """The router's score of each prompt (a gain router: P(strong better) - P(weak better); the
    others: P(strong better)), read as a one-turn user message."""
    return [model.score_text(p, features.facts(p)) for p in prompts]


def read(path: Path) -> RouterModel:
    """The router artifact at ``path``."""
    return load(path)


# --- the store: trained routers by name and content version ---------------------------------


async def on_store(url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    """``work(store)`` on the store at ``url``, opened and closed around it (the CLI's)."""
    store = await open_store(url)
    try:
        return await work(store)
    finally:
        await store.aclose()


async def store_router(store: Store, name: str, data: bytes) -> tuple[StoredRouter, bool]:
    """Keep the artifact ``data`` under ``name``; True when it was new (same bytes: same row)."""
    header = (await asyncio.to_thread(loads, data)).header
    new = NewRouter(
        name=name,
        version=str(header["version"]),
        data_sha256=str(header.get("data_sha256", "")),
        weak_model=str(header.get("weak_model", "")),
        strong_model=str(header.get("strong_model", "")),
        seed=int(header.get("seed", 0)),
        provenance=json.dumps(header, sort_keys=True),
        artifact=data,
    )
    async with store.transaction() as session:
        return await RouterArtifacts(session).put(new)


async def stored_routers(store: Store, name: str | None = None) -> list[StoredRouter]:
    """The stored routers (named ``name``), oldest first, without their bytes."""
    async with store.transaction() as session:
        return await RouterArtifacts(session).list(name)


async def stored_router(store: Store, name: str, version: str | None = None) -> StoredRouter:
    """One stored router's provenance (the newest of ``name`` without a version)."""
    async with store.transaction() as session:
        found = await RouterArtifacts(session).get(name, version)
    if found is None:
        raise NotFound(f"no stored router {_label(name, version)}")
    return found


async def preload(settings: Settings, store: Store | None) -> dict[str, RouterModel]:
    """The learned routers ``settings`` names, by deployment, read off the event loop: from the
    store (at start-up and on reload, where it is open) or from artifact files.
    Raises ``ConfigError`` naming each router that cannot be read."""
    out: dict[str, RouterModel] = {}
    issues: list[ConfigIssue] = []
    for deployment, cfg in settings.deployments.items():
        router = cfg.router
        if router is None:
            continue
        where = f"deployments.{deployment}.router"
        try:
            if router.artifact is not None:
                out[deployment] = await asyncio.to_thread(load, router.artifact)
            else:
                out[deployment] = await _from_store(store, str(router.name), router.version)
        except ModelyardError as exc:
            field = "artifact" if router.artifact is not None else "name"
            issues.append(ConfigIssue(f"{where}.{field}", exc.message))
    if issues:
        raise ConfigError(issues)
    return out


async def _from_store(store: Store | None, name: str, version: str | None) -> RouterModel:
    if store is None:
        raise NotFound(f"router {_label(name, version)} is in the store, and none is open")
    async with store.transaction() as session:
        found = await RouterArtifacts(session).artifact(name, version)
    if found is None:
        raise NotFound(f"no stored router {_label(name, version)} (see modelyard router list)")
    return await asyncio.to_thread(loads, found[1])


def _label(name: str, version: str | None) -> str:
    return f"{name!r}" + (f" version {version!r}" if version else "")
