"""Fit a :class:`RouterModel` from labelled prompts (scikit-learn, imported only here: it is
the optional ``router`` extra, which a serving-only install leaves out).

A logistic regression on the hashed TF-IDF (word uni- and bigrams by default, character
3-5-grams on request: ``routing/chars.py``, docs/router.md has the figures) and the cheap facts,
then Platt scaling fitted on cross-validated decision values; the scaling is linear, so it is
folded into the coefficients and the served model stays one dot product and a sigmoid.

With ``lsa_dims`` the regression is fitted on the TF-IDF projected on its top singular
directions (LSA, an SVD of the training prompts); the projection is linear too, so it is
folded back into weights over the buckets and the artifact and the serving cost do not change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from modelyard.core.errors import ModelyardError
from modelyard.routing import features as F
from modelyard.routing.model import TEXT_FEATURES, RouterModel, text_vector

LABELS: Final = frozenset({"gain", "pairwise", "needed"})


@dataclass(frozen=True, slots=True)
class Example:
    """One training prompt: its text, its cheap facts, whether the strong model was needed
    (it did better than the weak one) and whether the two did differently at all."""

    text: str
    facts: list[float]
    strong_needed: bool
    decided: bool = True  # False: both models equally good (or bad) on it


def fit(
    examples: Sequence[Example],
    header: Mapping[str, Any],
    c: float | None = None,
    seed: int = 0,
    text_features: str = "words",
    lsa_dims: int = 0,
    label: str = "needed",
) -> RouterModel:
    """Train on ``examples``; ``header`` is the provenance to keep; ``text_features``:
    ``chars`` or ``words``; ``lsa_dims`` > 0: on the TF-IDF's top singular directions (LSA);
    ``c`` (inverse regularisation): 0.3 on the buckets, 1.0 on LSA's few dense columns.
    ``label``: ``needed``, P(strong better) from every prompt; ``pairwise`` (RouteLLM's
    training on wins), P(strong better | one model better), ties left out; ``gain``,
    P(strong better) - P(weak better), two regressions: the strong model's expected gain,
    what APGR rewards. When the weak model never did better, ``pairwise`` and ``gain`` have
    nothing to learn about it and fall back to ``needed`` (the header says which)."""
    _check(text_features, lsa_dims, label)
    c = c if c is not None else (1.0 if lsa_dims else 0.3)
    try:
        from scipy import sparse
        from sklearn.model_selection import StratifiedKFold
    except ImportError as exc:  # the optional 'router' extra: serving does not need it
        raise ModelyardError(
            "training a router needs scikit-learn: pip install 'modelyard[router]'",
            code="router_training_unavailable",
        ) from exc

    labels = np.array([e.strong_needed for e in examples], dtype=np.int8)
    decided = np.array([e.decided for e in examples], dtype=bool)
    down = np.array([e.decided and not e.strong_needed for e in examples], dtype=np.int8)
    if label == "gain" and down.min() == down.max():
        label = "needed"  # the weak model never did better: nothing to learn about it
    if label == "pairwise" and len(set(labels[decided].tolist())) < 2:
        label = "needed"  # the weak model never won (or the strong never): no pairs to learn
    # The IDF (and the LSA basis) come from every prompt, the regressions from ``rows``.
    rows = decided if label == "pairwise" else np.ones(len(examples), dtype=bool)
    if not rows.any() or labels[rows].min() == labels[rows].max():
        raise ValueError("training needs prompts where the strong model was needed and not")
    idf, used, x = _matrix(examples, text_features, sparse.csr_matrix)
    x, unfold = _lsa(x, lsa_dims, seed) if lsa_dims else (x, None)
    fold = _Fold(x, rows, c, StratifiedKFold(n_splits=5, shuffle=True, random_state=seed))
    coef, intercept, calibrated = fold.learn(labels, used, unfold)
    coef_down, intercept_down = None, 0.0
    if label == "gain":  # the same folds, features and C: only the label differs
        coef_down, intercept_down, calibrated_down = fold.learn(down, used, unfold)
        calibrated = calibrated - calibrated_down
    # 101 quantiles of the calibrated scores: a share of strong calls becomes a threshold.
    quantiles = [round(float(q), 6) for q in np.quantile(calibrated, np.linspace(0, 1, 101))]
    full = {
        **header,
        "examples": len(examples),
        "strong_needed": int(labels.sum()),
        "c": c,
        "text_features": text_features,
        "lsa_dims": lsa_dims,
        "label": label,
        "score_quantiles": quantiles,
    }
    return RouterModel(idf, coef, intercept, full, text_features, coef_down, intercept_down)


def _check(text_features: str, lsa_dims: int, label: str) -> None:
    if text_features not in TEXT_FEATURES:
        raise ValueError(f"text features {text_features!r}, not one of words, chars")
    if lsa_dims < 0:
        raise ValueError(f"LSA dimensions {lsa_dims}, not >= 0")
    if label not in LABELS:
        raise ValueError(f"label {label!r}, not one of {sorted(LABELS)}")


Vector = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True, slots=True)
class _Fold:
    """The training matrix, the rows a regression learns from, its C and the folds."""

    x: Any
    rows: Any
    c: float
    folds: Any

    def learn(self, labels: Any, used: Any, unfold: Any) -> tuple[Any, float, Vector]:
        """A logistic regression of ``labels`` on the rows, Platt-scaled on 5-fold
        cross-validated decision values and folded into weights over all ``DIM`` columns; and
        its calibrated score of every row (held-out folds for the rows, the final model for
        the others)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_predict

        learner = LogisticRegression(C=self.c, max_iter=2000)
        x_rows, y = self.x[self.rows], labels[self.rows]
        held = cross_val_predict(learner, x_rows, y, cv=self.folds, method="decision_function")
        platt = LogisticRegression(C=1e6).fit(np.asarray(held).reshape(-1, 1), y)
        learner.fit(x_rows, y)
        scores = np.asarray(learner.decision_function(self.x), dtype=np.float64)
        scores[self.rows] = held
        a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        weights = learner.coef_[0] if unfold is None else unfold(learner.coef_[0])
        coef = np.zeros(F.DIM, dtype=np.float32)
        coef[used] = weights * a
        calibrated = 1.0 / (1.0 + np.exp(-(a * scores + b)))
        return coef, float(learner.intercept_[0]) * a + b, calibrated


def _lsa(x: Any, dims: int, seed: int) -> tuple[Any, Any]:
    """The TF-IDF columns of ``x`` projected on their top ``dims`` right singular vectors (an
    SVD of the training prompts: LSA), the facts kept beside them; and the map from the
    weights over that space back to weights over ``x``'s columns. The projection is linear,
    so the served model stays one dot product over the buckets (no new artifact part)."""
    from sklearn.decomposition import TruncatedSVD

    text = x[:, : -F.FACTS].tocsc()
    # A bucket in one prompt only has no co-occurrence for the SVD to find: left out (its
    # weight is 0), which makes the SVD several times cheaper.
    shared = np.nonzero(np.diff(text.indptr) >= 2)[0]
    if len(shared) < 2:
        raise ValueError("LSA needs buckets shared by two or more training prompts")
    text = text[:, shared].tocsr()
    dims = min(dims, min(text.shape) - 1)
    svd = TruncatedSVD(n_components=dims, algorithm="randomized", n_iter=3, random_state=seed)
    svd.fit(text)
    basis = svd.components_  # (dims, shared columns), orthonormal rows
    projected = np.hstack([np.asarray(text @ basis.T), x[:, -F.FACTS :].toarray()])
    columns = x.shape[1] - F.FACTS

    def unfold(w: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, Any]:
        out = np.zeros(columns + F.FACTS)
        out[shared] = basis.T @ w[:dims]
        out[columns:] = w[dims:]
        return out

    return projected, unfold


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
