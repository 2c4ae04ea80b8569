"""Deny lists (words and regular expressions) and the input size bound."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from modelyard.guardrails.model import Finding

MAX_PATTERNS: Final = 1000
MAX_PATTERN_CHARS: Final = 1000


def _check_keys(settings: Mapping[str, Any], accepted: set[str]) -> None:
    unknown = set(settings) - accepted
    if unknown:
        raise ValueError(
            f"unknown settings {sorted(unknown)}; accepted: {', '.join(sorted(accepted))}"
        )


def _strings(settings: Mapping[str, Any], key: str) -> list[str]:
    value = settings.get(key, [])
    if (
        not isinstance(value, list)
        or len(value) > MAX_PATTERNS
        or not all(isinstance(v, str) and 0 < len(v) <= MAX_PATTERN_CHARS for v in value)
    ):
        raise ValueError(
            f"{key}: a list of at most {MAX_PATTERNS} non-empty strings "
            f"of at most {MAX_PATTERN_CHARS} characters"
        )
    return value


@dataclass(frozen=True, slots=True)
class DenyDetector:
    """Every match of one alternation of the deny list's words and patterns."""

    pattern: re.Pattern[str]
    category: str

    def scan(self, text: str) -> list[Finding]:
        return [Finding(self.category, m.start(), m.end()) for m in self.pattern.finditer(text)]


def deny_guard(settings: Mapping[str, Any]) -> DenyDetector:
    """Settings: ``words`` (matched whole, case-insensitively), ``patterns`` (Python regular
    expressions), ``category`` (default ``denied``)."""
    _check_keys(settings, {"words", "patterns", "category"})
    words = _strings(settings, "words")
    patterns = _strings(settings, "patterns")
    if not words and not patterns:
        raise ValueError("words or patterns: at least one word or pattern is needed")
    for n, p in enumerate(patterns):
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"patterns[{n}]: not a regular expression: {exc}") from exc
    alternatives = [rf"\b{re.escape(w)}\b" for w in words] + [f"(?:{p})" for p in patterns]
    category = settings.get("category", "denied")
    if not isinstance(category, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", category):
        raise ValueError("category: lowercase letters, digits and _ (at most 41)")
    return DenyDetector(re.compile("|".join(alternatives), re.IGNORECASE), category)


@dataclass(frozen=True, slots=True)
class SizeDetector:
    """A text longer than ``max_chars`` characters (a whole-text finding)."""

    max_chars: int

    def scan(self, text: str) -> list[Finding]:
        if len(text) > self.max_chars:
            return [Finding("too_large", 0, len(text))]
        return []


def size_guard(settings: Mapping[str, Any]) -> SizeDetector:
    """Settings: ``max_chars`` (a positive integer)."""
    _check_keys(settings, {"max_chars"})
    value = settings.get("max_chars")
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"max_chars: a positive integer; got {value!r}")
    return SizeDetector(value)
