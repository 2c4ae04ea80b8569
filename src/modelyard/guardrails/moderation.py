"""The moderation guard: a judge deployment (any model, the embedded one included) scores a text
on categories (hate, violence, sexual, self-harm by default); a score at or above
``threshold`` is a finding of that category.

The judge is asked for one JSON object of scores from 0 to 1; the first ``{...}`` in its answer
is read, so a chatty model still works. A judge that does not answer within ``timeout_s``, fails,
or answers something unreadable is *unavailable*: with ``fail_closed`` that is a finding
(``judge_unavailable``: a ``block`` guard then refuses the call), otherwise the text passes.

The detector does no I/O of its own: the caller hands it ``models``, which call a deployment
through the request pipeline (``services/guards.py``). It runs on the input phases (input,
tool_output: the pipeline waits for it before the upstream call) and on the answer (output:
a whole answer before it is returned; a stream at its finish, before the held-back end goes
out), there with ``block`` or ``flag`` only.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

from modelyard.core.errors import ModelyardError
from modelyard.guardrails.model import Finding


class Models(Protocol):
    """How a guard calls a deployment (through the request pipeline; ``services/guards.py``)."""

    async def chat(self, deployment: str, prompt: str) -> str:
        """The answer's text to one user message."""
        ...

    async def embed(self, deployment: str, texts: list[str]) -> list[list[float]]: ...


CATEGORIES: Final = ("hate", "violence", "sexual", "self_harm")
UNAVAILABLE: Final = "judge_unavailable"
MAX_TEXT: Final = 8000  # characters of the text the judge sees (its beginning)
_OBJECT: Final = re.compile(r"\{.*?\}", re.DOTALL)

PROMPT: Final = (
    "You are a content moderator. Rate the text between the markers for each category "
    "with a number from 0 (absent) to 1 (clearly present): {categories}. Answer with one JSON "
    'object only, for example {{"{first}": 0.0}}.\n<<<TEXT\n{text}\nTEXT>>>'
)


def parse_scores(answer: str, categories: tuple[str, ...]) -> dict[str, float] | None:
    """The category scores in a judge's answer, or None when it has none we can read."""
    match = _OBJECT.search(answer)
    if match is None:
        return None
    try:
        data = orjson.loads(match.group())
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    scores: dict[str, float] = {}
    for name in categories:
        value = data.get(name, data.get(name.replace("_", "-"), 0))
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        scores[name] = float(value)
    return scores


@dataclass(frozen=True, slots=True)
class ModerationDetector:
    deployment: str
    categories: tuple[str, ...]
    threshold: float
    timeout_s: float
    fail_closed: bool

    def scan(self, text: str) -> list[Finding]:
        """Without a judge nothing can be said (the pipeline calls ``ascan``)."""
        return []

    async def ascan(self, text: str, models: Models) -> list[Finding]:
        if not text.strip():
            return []
        prompt = PROMPT.format(
            categories=", ".join(self.categories), first=self.categories[0], text=text[:MAX_TEXT]
        )
        try:
            answer = await asyncio.wait_for(models.chat(self.deployment, prompt), self.timeout_s)
        except (TimeoutError, ModelyardError):
            return self._unavailable(text)
        scores = parse_scores(answer, self.categories)
        if scores is None:
            return self._unavailable(text)
        return [
            Finding(name, 0, len(text), round(score, 3))
            for name, score in scores.items()
            if score >= self.threshold
        ]

    def _unavailable(self, text: str) -> list[Finding]:
        return [Finding(UNAVAILABLE, 0, len(text))] if self.fail_closed else []


def moderation_guard(settings: Mapping[str, Any]) -> ModerationDetector:
    """Settings: ``deployment`` (the judge, required), ``categories`` (default hate, violence,
    sexual, self_harm), ``threshold`` (default 0.5), ``timeout_s`` (default 5),
    ``fail_closed`` (default false: an unavailable judge lets the text pass)."""
    accepted = {"deployment", "categories", "threshold", "timeout_s", "fail_closed"}
    unknown = set(settings) - accepted
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; accepted: {sorted(accepted)}")
    deployment = settings.get("deployment")
    if not isinstance(deployment, str) or not deployment:
        raise ValueError("deployment: the name of the judge deployment is required")
    categories = settings.get("categories", list(CATEGORIES))
    if (
        not isinstance(categories, list)
        or not categories
        or not all(
            isinstance(c, str) and re.fullmatch(r"[a-z][a-z0-9_]{0,40}", c) for c in categories
        )
    ):
        raise ValueError("categories: a list of lowercase names such as [hate, violence]")
    threshold = _number(settings, "threshold", 0.5, 0.0, 1.0)
    timeout_s = _number(settings, "timeout_s", 5.0, 0.0, 120.0)
    fail_closed = settings.get("fail_closed", False)
    if not isinstance(fail_closed, bool):
        raise ValueError(f"fail_closed: true or false; got {fail_closed!r}")
    return ModerationDetector(deployment, tuple(categories), threshold, timeout_s, fail_closed)


def _number(settings: Mapping[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo < value <= hi:
        raise ValueError(f"{key}: a number in ({lo:g}, {hi:g}]; got {value!r}")
    return float(value)
