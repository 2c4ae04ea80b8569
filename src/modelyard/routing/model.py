"""The learned router's artifact: calibrated logistic models over :mod:`routing.features`.

``score`` is the strong target's expected gain, P(strong better) - P(weak better), for a
``gain`` router (two weight vectors, the default), and P(strong better) for the others.
The artifact is one ``.npz`` file (numpy arrays only, read with ``allow_pickle=False``, so
loading one runs no code) holding the IDF, the coefficients, the intercept and a JSON
header: format version, training provenance, metrics.

Format 2 adds ``text_features`` to the header: ``words`` (hashed word uni- and bigrams,
:func:`routing.features.buckets`, the default) or ``chars`` (hashed character 3-5-grams,
:mod:`routing.chars`, ``router train --text-features chars``). A format-1 artifact is read as
``words``, so routers trained before keep scoring as they did.

Format 3 may add a second weight vector (``coef_down``, ``intercept_down``): a ``gain`` router
(``router train``'s default, ``routing/training.py``) scores P(strong better) - P(weak better),
the expected gain of the strong model, in [-1, 1]. Formats 1 and 2 have one vector and score
P(strong better) as before."""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from modelyard.core.chat import ChatRequest
from modelyard.core.errors import ModelyardError
from modelyard.routing import chars
from modelyard.routing import features as F

FORMAT: Final = "modelyard.router/3"
READABLE: Final = frozenset({"modelyard.router/1", "modelyard.router/2", FORMAT})
TEXT_FEATURES: Final = frozenset({"words", "chars"})
# An artifact is a few MB; a bound keeps a wrong path from filling memory.
MAX_ARTIFACT_BYTES: Final = 64 * 1024 * 1024

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class RouterModel:
    idf: Floats  # (TEXT_DIM,)
    coef: Floats  # (DIM,)
    intercept: float
    header: Mapping[str, Any] = field(default_factory=dict)
    text_features: str = "words"  # "chars" or "words": which hashed n-grams the IDF is over
    coef_down: Floats | None = None  # (DIM,): P(weak better), for a "gain" router
    intercept_down: float = 0.0

    @property
    def version(self) -> str:
        """The artifact's content digest (first 12 hex digits): what the ledger records."""
        return str(self.header.get("version", ""))

    def score_text(self, text: str, fact_row: list[float]) -> float:
        """P(strong needed) for a prompt text and its cheap facts; for a ``gain`` router,
        P(strong better) - P(weak better)."""
        idx, tf = text_vector(text, self.text_features)
        values = tf * self.idf[idx]
        values /= float(np.sqrt(values @ values)) or 1.0
        facts = np.asarray(fact_row, dtype=np.float32)
        up = _sigmoid(_linear(self.coef, self.intercept, idx, values, facts))
        if self.coef_down is None:
            return up
        return up - _sigmoid(_linear(self.coef_down, self.intercept_down, idx, values, facts))

    def score(self, request: ChatRequest) -> float:
        """P(strong needed) for a decoded chat request."""
        text = F.text_of(request)
        return self.score_text(text, F.request_facts(request, text))


def text_vector(text: str, kind: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The hashed n-gram buckets of ``text`` and their sublinear term frequencies, for the
    artifact's ``kind`` of text features (``chars`` or ``words``)."""
    if kind == "chars":
        return chars.buckets(text)
    grams = F.buckets(text)
    idx = np.fromiter(grams.keys(), dtype=np.int64, count=len(grams))
    return idx, np.fromiter(grams.values(), dtype=np.float32, count=len(grams))


def _linear(
    coef: Floats, intercept: float, idx: npt.NDArray[np.int64], values: Floats, facts: Floats
) -> float:
    return intercept + float(values @ coef[idx]) + float(facts @ coef[F.TEXT_DIM :])


def _invalid(message: str) -> ModelyardError:
    return ModelyardError(message, code="router_artifact_invalid")


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _arrays(model: RouterModel) -> dict[str, Any]:
    out: dict[str, Any] = {
        "idf": model.idf,
        "coef": model.coef,
        "intercept": np.float64(model.intercept),
    }
    if model.coef_down is not None:
        out["coef_down"] = model.coef_down
        out["intercept_down"] = np.float64(model.intercept_down)
    return out


def dumps(model: RouterModel) -> bytes:
    """The artifact's bytes; the header gets ``format`` and ``version`` (the content digest)."""
    body = io.BytesIO()
    np.savez_compressed(body, **_arrays(model))
    digest = hashlib.sha256(body.getvalue()).hexdigest()[:12]
    header = {
        **model.header,
        "format": FORMAT,
        "text_features": model.text_features,
        "version": digest,
    }
    out = io.BytesIO()
    np.savez_compressed(
        out,
        **_arrays(model),
        header=np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8),
    )
    return out.getvalue()


def loads(data: bytes) -> RouterModel:
    """Read an artifact written by :func:`dumps`.

    Raises ``ModelyardError`` (code ``router_artifact_invalid``) when it is not one."""
    if len(data) > MAX_ARTIFACT_BYTES:
        raise _invalid(f"router artifact over {MAX_ARTIFACT_BYTES} bytes")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            header = json.loads(bytes(npz["header"]).decode())
            idf = np.asarray(npz["idf"], dtype=np.float32)
            coef = np.asarray(npz["coef"], dtype=np.float32)
            intercept = float(npz["intercept"])
            down = np.asarray(npz["coef_down"], dtype=np.float32) if "coef_down" in npz else None
            intercept_down = float(npz["intercept_down"]) if down is not None else 0.0
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise _invalid(f"not a router artifact: {exc}") from exc
    if header.get("format") not in READABLE:
        raise _invalid(
            f"router artifact format {header.get('format')!r}, not one of {sorted(READABLE)}"
        )
    kind = header.get("text_features", "words")  # format 1 had only word n-grams
    if kind not in TEXT_FEATURES:
        raise _invalid(f"router artifact text features {kind!r}, not one of words, chars")
    if idf.shape != (F.TEXT_DIM,) or coef.shape != (F.DIM,):
        raise _invalid("router artifact has the wrong feature dimensions")
    if down is not None and down.shape != (F.DIM,):
        raise _invalid("router artifact has the wrong feature dimensions")
    return RouterModel(
        idf=idf,
        coef=coef,
        intercept=intercept,
        header=header,
        text_features=kind,
        coef_down=down,
        intercept_down=intercept_down,
    )


def load(path: Path) -> RouterModel:
    """Read an artifact file."""
    try:
        size = path.stat().st_size
        if size > MAX_ARTIFACT_BYTES:
            raise _invalid(f"router artifact {path} over {MAX_ARTIFACT_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise _invalid(f"cannot read router artifact {path}: {exc}") from exc
    return loads(data)
