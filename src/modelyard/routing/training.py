"""Fit a :class:`RouterModel` from labelled prompts (scikit-learn, imported only here: it is
the optional ``router`` extra, which a serving-only install leaves out).

A logistic regression on the hashed TF-IDF (word uni- and bigrams by default, character
3-5-grams on request: ``routing/chars.py``, docs/router.md has the figures) and the cheap facts,
then Platt scaling fitted on cross-validated decision values; the scaling is linear, so it is
folded into the coefficients and the served model stays one dot product and a sigmoid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelyard.core.errors import ModelyardError
from modelyard.routing import features as F
from modelyard.routing.model import TEXT_FEATURES, RouterModel, text_vector


@dataclass(frozen=True, slots=True)
class Example:
    """One training prompt: its text, its cheap facts, and whether the strong model was needed."""

    text: str
    facts: list[float]
    strong_needed: bool


def fit(
    examples: Sequence[Example],
    header: Mapping[str, Any],
    c: float = 0.3,
    seed: int = 0,
    text_features: str = "words",
) -> RouterModel:
    """Train on ``examples`` (both labels present); ``header`` is the provenance to keep;
    ``text_features`` is ``chars`` or ``words``."""
    if text_features not in TEXT_FEATURES:
        raise ValueError(f"text features {text_features!r}, not one of words, chars")
    try:
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
    except ImportError as exc:  # the optional 'router' extra: serving does not need it
        raise ModelyardError(
            "training a router needs scikit-learn: pip install 'modelyard[router]'",
            code="router_training_unavailable",
        ) from exc

    labels = np.array([e.strong_needed for e in examples], dtype=np.int8)
    if labels.min() == labels.max():
        raise ValueError("training needs prompts where the strong model was needed and not")
    idf, used, x = _matrix(examples, text_features, sparse.csr_matrix)
    learner = LogisticRegression(C=c, max_iter=2000)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    held_out = cross_val_predict(learner, x, labels, cv=folds, method="decision_function")
    platt = LogisticRegression(C=1e6).fit(np.asarray(held_out).reshape(-1, 1), labels)
    learner.fit(x, labels)
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    coef = np.zeros(F.DIM, dtype=np.float32)
    coef[used] = learner.coef_[0] * a
    intercept = float(learner.intercept_[0]) * a + b
    # The calibrated scores of held-out folds, as 101 quantiles: a target share of strong
    # calls becomes a threshold (routing/learned.py) without the training data.
    calibrated = 1.0 / (1.0 + np.exp(-(a * np.asarray(held_out) + b)))
    quantiles = [round(float(q), 6) for q in np.quantile(calibrated, np.linspace(0, 1, 101))]
    full = {
        **header,
        "examples": len(examples),
        "strong_needed": int(labels.sum()),
        "c": c,
        "text_features": text_features,
        "score_quantiles": quantiles,
    }
    return RouterModel(
        idf=idf, coef=coef, intercept=intercept, header=full, text_features=text_features
    )


def _matrix(
    examples: Sequence[Example], text_features: str, csr: Any
) -> tuple[np.ndarray[Any, np.dtype[np.float32]], np.ndarray[Any, np.dtype[np.int64]], Any]:
    """The IDF, the used columns and the (examples x used columns) TF-IDF + facts matrix."""
    grams = [text_vector(e.text, text_features) for e in examples]
    idf = _idf([idx for idx, _ in grams])
    rows, cols, vals = [], [], []
    fact_cols = np.arange(F.TEXT_DIM, F.DIM, dtype=np.int64)
    for r, ((idx, tf), example) in enumerate(zip(grams, examples, strict=True)):
        values = tf.astype(np.float64) * idf[idx]
        norm = float(np.sqrt(values @ values)) or 1.0
        rows.append(np.full(len(idx) + F.FACTS, r, dtype=np.int64))
        cols.append(np.concatenate([idx, fact_cols]))
        vals.append(np.concatenate([values / norm, np.asarray(example.facts, dtype=np.float64)]))
    # Only the columns some prompt uses: L-BFGS over the few thousand used buckets instead of
    # all 2^18 is many times faster, and the unused coefficients are zero either way.
    used, packed = np.unique(np.concatenate(cols), return_inverse=True)
    shape = (len(examples), len(used))
    data = (np.concatenate(vals), (np.concatenate(rows), packed))
    return idf, used, csr(data, shape=shape, dtype=np.float64)


def _idf(grams: list[np.ndarray[Any, np.dtype[np.int64]]]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Smoothed IDF, ``log((1 + n) / (1 + df)) + 1``; buckets never seen get the largest."""
    df = np.zeros(F.TEXT_DIM, dtype=np.float64)
    for idx in grams:
        df[idx] += 1  # each prompt's buckets are distinct, so this counts documents
    n = len(grams)
    return (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
