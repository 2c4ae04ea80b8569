"""The playground's kept comparisons: what was asked, and each deployment's answer and figures,
in this process's memory for the user who made them (bounded; the oldest dropped first)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from modelyard.core.chat import Usage
from modelyard.core.errors import NotFound

MAX_KEPT = 200  # comparisons kept per process (the oldest dropped first)


@dataclass(slots=True)
class Column:
    deployment: str
    text: str = ""
    refusal: str = ""  # the model's refusal, apart from its text (``core.chat.Message.refusal``)
    finish: str | None = None  # the first choice's finish reason
    started: bool = False
    done: bool = False
    error: str | None = None
    served: str | None = None
    ttft_ms: float | None = None
    latency_ms: float | None = None
    usage: Usage | None = None
    cost_micros: int | None = None


@dataclass(slots=True)
class SideBySide:
    id: str
    owner: str  # the user's display name: another user's comparison is not found
    system: str
    user: str
    schema: dict[str, Any] | None
    temperature: float | None
    max_tokens: int | None
    columns: list[Column] = field(default_factory=list)


class Comparisons:
    """Kept comparisons by random id, bounded."""

    def __init__(self, limit: int = MAX_KEPT) -> None:
        self._by_id: OrderedDict[str, SideBySide] = OrderedDict()
        self._limit = limit

    def add(self, comparison: SideBySide) -> None:
        while len(self._by_id) >= self._limit:
            self._by_id.popitem(last=False)
        self._by_id[comparison.id] = comparison

    def get(self, comparison_id: str, owner: str) -> SideBySide:
        found = self._by_id.get(comparison_id)
        if found is None or found.owner != owner:
            raise NotFound(f"no comparison {comparison_id[:40]!r}", code="comparison_not_found")
        return found

    def of(self, owner: str) -> list[SideBySide]:
        return [c for c in reversed(self._by_id.values()) if c.owner == owner]
