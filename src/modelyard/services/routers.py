"""Learned routers as a use case: train one from labelled prompts, read one, score prompts.

The evaluation and training commands (``evals/routing_eval.py``) reach ``routing`` through
here; the artifact format and the learner are ``routing/model.py`` and ``routing/training.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelyard.routing import features
from modelyard.routing.model import RouterModel, dumps, load, loads

__all__ = ["RouterModel", "dumps", "load", "loads", "score_prompts", "train"]


def train(
    labelled: Sequence[tuple[str, bool]], header: Mapping[str, Any], c: float = 0.3, seed: int = 0
) -> RouterModel:
    """A router from ``(prompt, strong model needed)`` pairs; ``header`` is its provenance."""
    from modelyard.routing.training import Example, fit

    examples = [Example(text, features.facts(text), needed) for text, needed in labelled]
    return fit(examples, header, c=c, seed=seed)


def score_prompts(model: RouterModel, prompts: Sequence[str]) -> list[float]:
    """P(strong model needed) for each prompt, read as a one-turn user message."""
    return [model.score_text(p, features.facts(p)) for p in prompts]


def read(path: Path) -> RouterModel:
    """The router artifact at ``path``."""
    return load(path)
