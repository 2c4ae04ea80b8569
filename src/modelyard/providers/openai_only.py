"""OpenAI request fields that upstreams of other APIs cannot honour.

Adapters for other APIs refuse these with a 400 naming the field, when the value asks for
something, rather than dropping them silently. The predicate says whether a value asks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

REFUSED_UNLESS_DEFAULT: dict[str, Callable[[Any], bool]] = {
    "logit_bias": bool,
    "logprobs": bool,
    "top_logprobs": bool,
    "frequency_penalty": bool,
    "presence_penalty": bool,
    "audio": lambda value: value is not None,
    "prediction": lambda value: value is not None,
    "web_search_options": lambda value: value is not None,
    "modalities": lambda value: value not in (None, ["text"]),
    "functions": bool,
    "function_call": lambda value: value not in (None, "none", "auto"),
}
