"""The ``semantic`` strategy: operator rules that send a request to a target by what it asks.

A deployment using it carries a :class:`SemanticRouting`: rules in order, each naming a target
and its conditions: keywords (any, case-insensitive, in the user turns), a regular expression,
the presence of a JSON schema in ``response_format``, or the similarity to example prompts
(cosine of hashed word unigrams and bigrams, the learned router's features without IDF, so no
model weights are needed) at or above ``min_similarity``. A rule matches when any of its
conditions does; the first matching rule's target goes first, the others follow in the
configured order (failover still applies). No match keeps the configured order. The decision
(``semantic:<rule>:<target>`` with the similarity when that matched) goes to the ledger and the
access log; the opt-out header keeps the configured order (``semantic:off``).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.core.chat import ChatRequest
from modelyard.routing import features as F
from modelyard.routing.health import HealthBoard
from modelyard.routing.table import Target

if TYPE_CHECKING:
    from modelyard.routing.router import PlanRequest


def _vector(text: str) -> dict[int, float]:
    """Hashed n-gram frequencies of ``text``, L2-normalised."""
    grams = F.buckets(text)
    norm = math.sqrt(sum(v * v for v in grams.values())) or 1.0
    return {i: v / norm for i, v in grams.items()}


def _cosine(a: dict[int, float], b: dict[int, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(i, 0.0) for i, v in a.items())


@dataclass(frozen=True, slots=True)
class SemanticRule:
    target: str  # provider/model
    keywords: tuple[str, ...] = ()  # lower case
    pattern: re.Pattern[str] | None = None
    json_schema: bool = False
    examples: tuple[dict[int, float], ...] = ()
    min_similarity: float = 0.5

    @classmethod
    def build(
        cls,
        target: str,
        keywords: tuple[str, ...] = (),
        regex: str | None = None,
        json_schema: bool = False,
        examples: tuple[str, ...] = (),
        min_similarity: float = 0.5,
    ) -> SemanticRule:
        """A rule from its configured parts (the regex compiled, the examples vectorised)."""
        return cls(
            target,
            tuple(k.lower() for k in keywords),
            re.compile(regex) if regex else None,
            json_schema,
            tuple(_vector(e) for e in examples),
            min_similarity,
        )

    def match(self, text: str, lowered: str, request: ChatRequest) -> str | None:
        """Why the rule matches (``keyword``, ``regex``, ``json_schema``, ``similar:0.73``)."""
        if any(k in lowered for k in self.keywords):
            return "keyword"
        if self.pattern is not None and self.pattern.search(text):
            return "regex"
        fmt = request.response_format
        if self.json_schema and fmt is not None and fmt.kind == "json_schema":
            return "json_schema"
        if self.examples:
            vector = _vector(text)
            best = max(_cosine(vector, e) for e in self.examples)
            if best >= self.min_similarity:
                return f"similar:{best:.3f}"
        return None


@dataclass(frozen=True, slots=True)
class SemanticRouting:
    rules: tuple[SemanticRule, ...]


class Semantic:
    """The strategy (registered as ``semantic``); without rules it keeps the configured order."""

    def order(
        self, targets: list[Target], req: PlanRequest, health: HealthBoard, rng: random.Random
    ) -> list[Target]:
        routing = req.deployment.semantic
        if routing is None or req.request is None:
            return targets
        if req.opt_out:
            _note(req, "semantic:off")
            return targets
        text = F.text_of(req.request)
        lowered = text.lower()
        for index, rule in enumerate(routing.rules):
            chosen = next((t for t in targets if t.key == rule.target), None)
            if chosen is None:
                continue  # that target cannot serve this request
            why = rule.match(text, lowered, req.request)
            if why is not None:
                _note(req, f"semantic:{index}:{why}")
                return [chosen, *(t for t in targets if t is not chosen)]
        _note(req, "semantic:none")
        return targets


def _note(req: PlanRequest, text: str) -> None:
    if req.note is not None:
        req.note(text)
