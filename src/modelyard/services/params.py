"""A target's parameter overrides applied to a request (primary calls and shadow calls)."""

from __future__ import annotations

import dataclasses
from typing import Any

from modelyard.core.chat import ChatRequest

# Target ``params`` that map onto modelled request fields; the rest travel as extra fields.
_MODELLED = frozenset({"temperature", "top_p", "max_tokens", "seed", "n", "user"})


def apply_params(request: ChatRequest, params: dict[str, Any] | Any) -> ChatRequest:
    """The request with a target's parameter overrides applied (the operator's word wins)."""
    if not params:
        return request
    modelled = {k: v for k, v in params.items() if k in _MODELLED}
    extra = {k: v for k, v in params.items() if k not in _MODELLED}
    if extra:
        modelled["extra"] = {**request.extra, **extra}
        modelled["overrides"] = {**request.overrides, **extra}
    return dataclasses.replace(request, **modelled)
