"""The topic allow list: a text must be close enough, by embedding similarity, to one of the
allowed topics (``off_topic`` otherwise).

The topics' embeddings are asked for once per guard (the first call that needs them) from the
configured embedding deployment, through the request pipeline like every model call; each text
costs one embedding call. A deployment that fails or does not answer within ``timeout_s``
makes the guard unavailable: with ``fail_closed`` that is a finding (``topic_unavailable``),
otherwise the text passes. Texts under ``min_chars`` characters are not judged (a "thanks" is
on no topic).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from modelyard.core.errors import ModelyardError
from modelyard.guardrails.model import Finding
from modelyard.guardrails.moderation import Models

UNAVAILABLE: Final = "topic_unavailable"
MAX_TEXT: Final = 8000
MAX_TOPICS: Final = 100


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


@dataclass(eq=False, slots=True)
class TopicDetector:
    deployment: str
    topics: tuple[str, ...]
    threshold: float
    timeout_s: float
    fail_closed: bool
    min_chars: int
    # The topics' vectors, once known (per guard object, i.e. per config; a reload asks again).
    vectors: list[list[float]] = field(default_factory=list)

    def scan(self, text: str) -> list[Finding]:
        """Without an embedding call nothing can be said (the pipeline calls ``ascan``)."""
        return []

    async def ascan(self, text: str, models: Models) -> list[Finding]:
        if len(text.strip()) < self.min_chars:
            return []
        try:
            async with asyncio.timeout(self.timeout_s):
                if not self.vectors:
                    self.vectors = await models.embed(self.deployment, list(self.topics))
                (vector,) = await models.embed(self.deployment, [text[:MAX_TEXT]])
        except (TimeoutError, ModelyardError, ValueError):
            return [Finding(UNAVAILABLE, 0, len(text))] if self.fail_closed else []
        best = max(cosine(vector, topic) for topic in self.vectors)
        if best >= self.threshold:
            return []
        return [Finding("off_topic", 0, len(text), round(1.0 - best, 3))]


def topics_guard(settings: Mapping[str, Any]) -> TopicDetector:
    """Settings: ``deployment`` (an embedding deployment, required), ``topics`` (descriptions,
    required), ``threshold`` (cosine similarity, default 0.5), ``timeout_s`` (default 5),
    ``fail_closed`` (default false), ``min_chars`` (default 20)."""
    accepted = {"deployment", "topics", "threshold", "timeout_s", "fail_closed", "min_chars"}
    unknown = set(settings) - accepted
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; accepted: {sorted(accepted)}")
    deployment = settings.get("deployment")
    if not isinstance(deployment, str) or not deployment:
        raise ValueError("deployment: the name of an embedding deployment is required")
    topics = settings.get("topics")
    if (
        not isinstance(topics, list)
        or not 0 < len(topics) <= MAX_TOPICS
        or not all(isinstance(t, str) and 0 < len(t) <= 1000 for t in topics)
    ):
        raise ValueError(f"topics: a list of 1 to {MAX_TOPICS} descriptions")
    threshold = settings.get("threshold", 0.5)
    timeout_s = settings.get("timeout_s", 5.0)
    for key, value, hi in (("threshold", threshold, 1.0), ("timeout_s", timeout_s, 120.0)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= hi:
            raise ValueError(f"{key}: a number in (0, {hi:g}]; got {value!r}")
    fail_closed = settings.get("fail_closed", False)
    if not isinstance(fail_closed, bool):
        raise ValueError(f"fail_closed: true or false; got {fail_closed!r}")
    min_chars = settings.get("min_chars", 20)
    if not isinstance(min_chars, int) or isinstance(min_chars, bool) or min_chars < 0:
        raise ValueError(f"min_chars: an integer >= 0; got {min_chars!r}")
    return TopicDetector(
        deployment, tuple(topics), float(threshold), float(timeout_s), fail_closed, min_chars
    )
