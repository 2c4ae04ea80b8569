"""The learner variants ``bench/router_sweep.py`` compares, each fitted on the training subjects.

Every variant is ``(texts, weak, strong, train, test, seed, cache) -> scores of the test rows``;
``cache`` keeps the term-frequency matrices, which do not depend on the split. The features
are the shipped ones (``routing/features.py``, ``routing/chars.py``): sublinear TF times an IDF
fitted on the training rows, L2-normalised, then the cheap facts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.linear_model import LogisticRegression

from modelyard.routing import features as F
from modelyard.routing.model import text_vector

Array = np.ndarray[Any, Any]
Variant = Callable[[list[str], Array, Array, Array, Array, int, dict[str, Any]], Array]


def _tf(texts: list[str], kind: str, cache: dict[str, Any]) -> Any:
    """The (prompts x TEXT_DIM) sublinear term frequencies and the facts, built once."""
    if kind not in cache:
        rows, cols, vals = [], [], []
        for r, text in enumerate(texts):
            idx, tf = text_vector(text, kind)
            rows.append(np.full(len(idx), r))
            cols.append(idx)
            vals.append(tf)
        tf_matrix = sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(texts), F.TEXT_DIM),
            dtype=np.float64,
        )
        cache[kind] = tf_matrix
        cache.setdefault("facts", np.asarray([F.facts(t) for t in texts]))
    return cache[kind]


def tfidf(texts: list[str], kind: str, train: Array, cache: dict[str, Any]) -> tuple[Any, Array]:
    """The L2-normalised TF-IDF (IDF from the ``train`` rows, as ``training._idf``) and facts."""
    tf = _tf(texts, kind, cache)
    df = np.asarray((tf[train] > 0).sum(axis=0)).ravel()
    idf = np.log((1.0 + train.sum()) / (1.0 + df)) + 1.0
    x = tf @ sparse.diags(idf)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    x = sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ x
    return x.tocsr(), cache["facts"]


def _logistic(x: Any, y: Array, c: float, weights: Array | None = None) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=2000).fit(x, y, sample_weight=weights)


def linear(kind: str, c: float = 0.3) -> Variant:
    """The shipped learner: logistic regression on TF-IDF + facts, label "strong needed"."""

    def run(texts: list[str], weak: Array, strong: Array, train: Array, test: Array,
            seed: int, cache: dict[str, Any]) -> Array:  # fmt: skip
        x, facts = tfidf(texts, kind, train, cache)
        full = sparse.hstack([x, sparse.csr_matrix(facts)]).tocsr()
        model = _logistic(full[train], (strong > weak)[train], c)
        return np.asarray(model.decision_function(full[test]))

    return run


def projection(texts: list[str], kind: str, k: int, train: Array, seed: int,
               cache: dict[str, Any]) -> tuple[Array, Array]:  # fmt: skip
    """The TF-IDF projected on its top ``k`` singular directions (an SVD of the training rows
    only: LSA), and the facts; cached per split."""
    key = f"svd-{kind}-{k}-{seed}-{int(train.sum())}"
    if key not in cache:
        x, _ = tfidf(texts, kind, train, cache)
        # Buckets in one training prompt only carry no co-occurrence for the SVD to find: left
        # out, which makes it several times cheaper (the fold maps them to weight 0).
        df = np.asarray((x[train] > 0).sum(axis=0)).ravel()
        shared = np.nonzero(df >= 2)[0]
        svd = TruncatedSVD(n_components=k, random_state=seed, algorithm="randomized", n_iter=3)
        svd.fit(x[train][:, shared])
        cache[key] = np.asarray(x[:, shared] @ svd.components_.T)
    return cache[key], cache["facts"]


def lsa(kind: str, k: int, c: float = 1.0) -> Variant:
    """Logistic regression on an SVD (LSA) of the TF-IDF to ``k`` dimensions, fitted on the
    training rows only, plus the facts. Linear in the TF-IDF: it folds into one weight vector."""

    def run(texts: list[str], weak: Array, strong: Array, train: Array, test: Array,
            seed: int, cache: dict[str, Any]) -> Array:  # fmt: skip
        proj, facts = projection(texts, kind, k, train, seed, cache)
        z = np.hstack([proj, facts])
        model = _logistic(z[train], (strong > weak)[train], c)
        return np.asarray(model.decision_function(z[test]))

    return run


def pairwise(kind: str, c: float = 0.3) -> Variant:
    """The label of RouteLLM's pairwise training: only prompts where exactly one model was
    right, labelled by which one (ties left out)."""

    def run(texts: list[str], weak: Array, strong: Array, train: Array, test: Array,
            seed: int, cache: dict[str, Any]) -> Array:  # fmt: skip
        x, facts = tfidf(texts, kind, train, cache)
        full = sparse.hstack([x, sparse.csr_matrix(facts)]).tocsr()
        decided = train & (strong != weak)
        model = _logistic(full[decided], (strong > weak)[decided], c)
        return np.asarray(model.decision_function(full[test]))

    return run


def gain(kind: str, c: float = 0.3) -> Variant:
    """The label APGR rewards: the expected gain of the strong model, P(strong better) -
    P(weak better), from two logistic regressions (not one weight vector: a new artifact)."""

    def run(texts: list[str], weak: Array, strong: Array, train: Array, test: Array,
            seed: int, cache: dict[str, Any]) -> Array:  # fmt: skip
        x, facts = tfidf(texts, kind, train, cache)
        full = sparse.hstack([x, sparse.csr_matrix(facts)]).tocsr()
        up = _logistic(full[train], (strong > weak)[train], c)
        down = _logistic(full[train], (weak > strong)[train], c)
        return np.asarray(up.predict_proba(full[test])[:, 1] - down.predict_proba(full[test])[:, 1])

    return run


def ridge_gain(kind: str, alpha: float = 3.0) -> Variant:
    """A ridge regression on the gain itself (strong - weak in {-1, 0, 1}): linear, so it would
    fold into one weight vector (Platt scaling then maps it to P(strong needed))."""
    from sklearn.linear_model import Ridge

    def run(texts: list[str], weak: Array, strong: Array, train: Array, test: Array,
            seed: int, cache: dict[str, Any]) -> Array:  # fmt: skip
        x, facts = tfidf(texts, kind, train, cache)
        full = sparse.hstack([x, sparse.csr_matrix(facts)]).tocsr()
        model = Ridge(alpha=alpha).fit(full[train], (strong - weak)[train])
        return np.asarray(model.predict(full[test]))

    return run


def mf(kind: str, k: int = 300, dim: int = 64, epochs: int = 400, l2: float = 1e-3,
       pairs: bool = True) -> Variant:  # fmt: skip
    """Matrix factorisation as in RouteLLM: model embeddings v_m, a learned projection P of the
    prompt's embedding (here its LSA vector), win logit w . ((v_strong - v_weak) * (P z)) +
    facts, trained with Adam on pairwise wins (full batch, numpy). With two models it is linear
    in z, so it folds into one weight vector like the others."""

    def run(texts: list[str], weak: Array, strong: Array, train: Array, test: Array,
            seed: int, cache: dict[str, Any]) -> Array:  # fmt: skip
        proj, facts = projection(texts, kind, k, train, seed, cache)
        rows = train & (strong != weak) if pairs else train
        y = (strong > weak)[rows].astype(np.float64)
        params = _mf_fit(proj[rows], facts[rows], y, dim, epochs, l2, seed)
        return _mf_score(params, proj[test], facts[test])

    return run


def _mf_score(p: dict[str, Array], x: Any, facts: Array) -> Array:
    proj = np.asarray(x @ p["P"])  # (n, dim)
    return np.asarray(proj @ (p["w"] * (p["vs"] - p["vw"])) + facts @ p["f"] + p["b"])


def _mf_fit(x: Any, facts: Array, y: Array, dim: int, epochs: int, l2: float,
            seed: int) -> dict[str, Array]:  # fmt: skip
    rng = np.random.default_rng(seed)
    p = {
        "P": rng.normal(0, 0.1, (x.shape[1], dim)),
        "vs": rng.normal(0, 0.1, dim),
        "vw": rng.normal(0, 0.1, dim),
        "w": np.ones(dim),
        "f": np.zeros(facts.shape[1]),
        "b": np.zeros(1),
    }
    m = {k: np.zeros_like(v) for k, v in p.items()}
    s = {k: np.zeros_like(v) for k, v in p.items()}
    n, xt = len(y), x.T
    for step in range(1, epochs + 1):
        proj = np.asarray(x @ p["P"])
        d = p["vs"] - p["vw"]
        z = proj @ (p["w"] * d) + facts @ p["f"] + p["b"]
        err = (1.0 / (1.0 + np.exp(-z)) - y) / n  # d loss / d z
        g_proj = np.outer(err, p["w"] * d)
        g_d = p["w"] * (proj.T @ err)
        grads = {
            "P": np.asarray(xt @ g_proj) + l2 * p["P"],
            "vs": g_d + l2 * p["vs"],
            "vw": -g_d + l2 * p["vw"],
            "w": d * (proj.T @ err) + l2 * p["w"],
            "f": facts.T @ err,
            "b": np.array([err.sum()]),
        }
        for k, g in grads.items():  # Adam, lr 0.01
            m[k] = 0.9 * m[k] + 0.1 * g
            s[k] = 0.999 * s[k] + 0.001 * g * g
            p[k] -= 0.01 * (m[k] / (1 - 0.9**step)) / (np.sqrt(s[k] / (1 - 0.999**step)) + 1e-8)
    return p


VARIANTS: dict[str, Variant] = {
    "words": linear("words"),
    "chars": linear("chars"),
    "lsa-words-100": lsa("words", 100),
    "lsa-words-300": lsa("words", 300),
    "lsa-chars-100": lsa("chars", 100),
    "lsa-chars-300": lsa("chars", 300),
    "pairwise-words": pairwise("words"),
    "gain-words": gain("words"),
    "ridge-gain-words": ridge_gain("words"),
    "pairwise-chars": pairwise("chars"),
    "mf-words-100": mf("words", 100),
    "mf-words-300": mf("words", 300),
    "mf-chars-300": mf("chars", 300),
}
