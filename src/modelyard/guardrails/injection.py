"""Prompt-injection and jailbreak detection: weighted patterns of the known attack phrasings,
and the small classifier of ``guardrails.classifier``; by default a text's score is the higher
of the two.

Each pattern carries a weight; a text's score is ``1 - prod(1 - w)`` over the patterns it
matches (independent evidence), and the guard finds ``prompt_injection`` when the score reaches
``threshold``. The phrasings are the families catalogued in public injection data sets and
write-ups: instruction override ("ignore all previous instructions"), role reassignment ("you
are now DAN"), system-prompt extraction, fake conversation delimiters, safety-off requests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from modelyard.guardrails.classifier import LinearModel, shipped_model
from modelyard.guardrails.model import Finding

_FLAGS: Final = re.IGNORECASE | re.DOTALL

_WEIGHTED: Final[tuple[tuple[float, re.Pattern[str]], ...]] = tuple(
    (w, re.compile(p, _FLAGS))
    for w, p in (
        (
            0.85,
            r"\b(ignore|disregard|forget|override|skip)\b.{0,30}\b(all |any |the )?"
            r"(previous|prior|above|earlier|preceding|system|initial|original)\b.{0,20}"
            r"\b(instructions?|prompts?|rules|directions|guidelines|context|messages?)",
        ),
        (
            0.7,
            r"\b(reveal|print|show|repeat|output|tell me|display|leak|write out)\b.{0,40}"
            r"\b(system prompt|initial prompt|hidden (prompt|instructions)|your instructions"
            r"|the (text|words) above)",
        ),
        (
            0.75,
            r"\byou are (now|no longer)\b.{0,60}"
            r"\b(DAN|unfiltered|jailbroken|unrestricted|evil|free)",
        ),
        (0.8, r"\b(DAN|do anything now|developer mode|jailbreak(ed)? mode|god mode)\b"),
        (
            0.6,
            r"\b(without|no|bypass|disable|turn off|ignore)\b.{0,20}\b(restrictions"
            r"|content filters?|safety (filters?|guidelines|rules|training|mode)|your guidelines"
            r"|censorship|content policy|guardrails)\b",
        ),
        (0.55, r"\b(new|updated|real|actual) (instructions|rules|system prompt)\b\s*:"),
        (0.5, r"(^|\n)\s*(system|assistant)\s*:\s"),
        (0.6, r"<\|?(im_start|im_end|system|endoftext)\|?>|\[/?INST\]|<<SYS>>"),
        (0.45, r"\b(pretend|act as if|roleplay as|imagine) you (are|have) no\b"),
        (0.4, r"\bfrom now on\b.{0,40}\b(you will|you must|always|never)\b"),
        (0.5, r"\bdo not (follow|obey)\b.{0,30}\b(rules|instructions|guidelines)\b"),
    )
)


def heuristic_score(text: str) -> float:
    miss = 1.0
    for weight, pattern in _WEIGHTED:
        if pattern.search(text) is not None:
            miss *= 1.0 - weight
    return 1.0 - miss


MODES: Final = ("both", "heuristics", "classifier")


@dataclass(frozen=True, slots=True)
class InjectionHeuristics:
    threshold: float
    model: LinearModel | None = None  # None: heuristics only
    heuristics: bool = True

    def score(self, text: str) -> float:
        score = heuristic_score(text) if self.heuristics else 0.0
        if self.model is not None and score < self.threshold:
            score = max(score, self.model.score(text))
        return score

    def scan(self, text: str) -> list[Finding]:
        score = self.score(text)
        if score >= self.threshold:
            return [Finding("prompt_injection", 0, len(text), round(score, 3))]
        return []


def injection_guard(settings: Mapping[str, Any]) -> InjectionHeuristics:
    """Settings: ``threshold`` (0 < t <= 1, default 0.5), ``mode`` (both, heuristics or
    classifier; default both)."""
    unknown = set(settings) - {"threshold", "mode"}
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; accepted: mode, threshold")
    mode = settings.get("mode", "both")
    if mode not in MODES:
        raise ValueError(f"mode: one of {', '.join(MODES)}; got {mode!r}")
    threshold = settings.get("threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ValueError(f"threshold: a number in (0, 1]; got {threshold!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold: a number in (0, 1]; got {threshold!r}")
    model = shipped_model() if mode != "heuristics" else None
    return InjectionHeuristics(float(threshold), model, mode != "classifier")
