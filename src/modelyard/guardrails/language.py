"""Allowed languages: a text in another language is found (``language_xx``).

Identified by ``py3langid`` (the langid.py model, a naive Bayes over byte n-grams, 97
languages; its model file ships in the wheel, so it runs offline), loaded once per process,
when the first config with a language guard is built (0.3-0.6 s; a reload reuses it). Short
texts say little about their language, so texts under ``min_chars`` characters are not
judged, nor are texts identified with less than ``min_confidence``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from modelyard.guardrails.model import Finding

MAX_CHARS: Final = 4000  # the beginning of a text is enough to know its language


class _Identifier:
    """py3langid's identifier, typed for what we use of it."""

    def __init__(self) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]  # no stubs

        self._ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self.languages: frozenset[str] = frozenset(self._ident.nb_classes)

    def classify(self, text: str) -> tuple[str, float]:
        lang, confidence = self._ident.classify(text)
        return str(lang), float(confidence)


@cache
def identifier() -> _Identifier:
    """The process's identifier, loaded by the first call. It is only read after loading
    (``classify`` keeps no state), so every guard and thread can share it."""
    return _Identifier()


@dataclass(frozen=True, slots=True)
class LanguageDetector:
    allowed: frozenset[str]
    identifier: _Identifier
    min_chars: int = 20
    min_confidence: float = 0.8

    def scan(self, text: str) -> list[Finding]:
        if len(text) < self.min_chars:
            return []
        lang, confidence = self.identifier.classify(text[:MAX_CHARS])
        if lang in self.allowed or confidence < self.min_confidence:
            return []
        return [Finding(f"language_{lang}", 0, len(text), round(confidence, 3))]


def language_guard(settings: Mapping[str, Any]) -> LanguageDetector:
    """Settings: ``allowed`` (ISO 639-1 codes, required), ``min_chars`` (default 20),
    ``min_confidence`` (0-1, default 0.8)."""
    unknown = set(settings) - {"allowed", "min_chars", "min_confidence"}
    if unknown:
        raise ValueError(
            f"unknown settings {sorted(unknown)}; accepted: allowed, min_chars, min_confidence"
        )
    ident = identifier()
    allowed = settings.get("allowed")
    if not isinstance(allowed, list) or not allowed or not set(allowed) <= ident.languages:
        raise ValueError(
            "allowed: a list of ISO 639-1 codes such as [en, fr]; known: "
            + ", ".join(sorted(ident.languages))
        )
    min_chars = settings.get("min_chars", 20)
    if not isinstance(min_chars, int) or isinstance(min_chars, bool) or min_chars < 1:
        raise ValueError(f"min_chars: a positive integer; got {min_chars!r}")
    confidence = settings.get("min_confidence", 0.8)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise ValueError(f"min_confidence: a number in [0, 1]; got {confidence!r}")
    if not 0 <= confidence <= 1:
        raise ValueError(f"min_confidence: a number in [0, 1]; got {confidence!r}")
    return LanguageDetector(frozenset(allowed), ident, min_chars, float(confidence))
