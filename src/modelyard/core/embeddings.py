"""Canonical embedding request and result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelyard.core.chat import Usage


@dataclass(slots=True)
class EmbeddingRequest:
    model: str
    inputs: list[str] | list[list[int]]
    dimensions: int | None = None
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EmbeddingResult:
    vectors: list[list[float]]
    usage: Usage | None
    upstream_model: str | None = None
