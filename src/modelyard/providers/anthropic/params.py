"""What happens to request fields the Messages API has no counterpart for.

A field that would change the answer and that Claude cannot honour is refused with an
``InvalidRequest`` naming the field and the provider, rather than dropped: a client asking for
two choices, log-probabilities or a penalty must learn it did not get them. A field whose value
is the default (``n: 1``, ``presence_penalty: 0``, ``logprobs: false``) asks for nothing and
passes. Fields that only steer the vendor's bookkeeping (``store``, ``prompt_cache_key``,
OpenAI's ``service_tier`` values) are dropped. Every other ``extra`` field is sent as it is, so
that clients can use the Messages API's own parameters (``top_k``, ``thinking``,
``cache_control``, ``output_config``, ``container``...) through any dialect.
"""

from __future__ import annotations

from typing import Any

from modelyard.core.chat import ChatRequest
from modelyard.core.errors import InvalidRequest
from modelyard.providers import extras
from modelyard.providers.extras import ALWAYS_REFUSED, ExtrasPolicy, unsupported_field
from modelyard.providers.openai_only import REFUSED_UNLESS_DEFAULT

# The rule (see ``providers.extras``): from any dialect, OpenAI-only features that change the
# answer are refused unless default, bookkeeping is dropped, and the rest is sent as it is.
EXTRAS = ExtrasPolicy(
    "Messages API",
    refused={**REFUSED_UNLESS_DEFAULT, **ALWAYS_REFUSED},
    # Gemini clients' safety_settings: Claude applies its own safety system (docs/gemini-api.md).
    dropped=frozenset(
        {"store", "prompt_cache_key", "safety_identifier", "verbosity", "safety_settings"}
    ),
    consumed=frozenset({"reasoning_effort"}),  # turned into ``thinking`` by the codec
    # OpenAI's tiers ("default", "flex"...) mean nothing here.
    kept_values={"service_tier": ("auto", "standard_only")},
)


def passthrough_extras(request: ChatRequest, provider: str) -> dict[str, Any]:
    """The ``extra`` fields to send as they are; raises on fields that cannot be honoured."""
    return extras.passthrough_extras(request, EXTRAS, provider)


def check_core_fields(request: ChatRequest, provider: str) -> None:
    if request.n is not None and request.n > 1:
        raise unsupported_field("n", provider, "it returns exactly one choice per request")
    if request.seed is not None:
        raise unsupported_field("seed", provider, "it has no deterministic sampling")
    if request.temperature is not None and not 0 <= request.temperature <= 1:
        raise InvalidRequest(
            f"temperature: provider {provider!r} accepts values from 0 to 1, got "
            f"{request.temperature}",
            param="temperature",
        )


def user_id(request: ChatRequest) -> str | None:
    """The opaque end-user id for ``metadata.user_id`` (``user``, else ``safety_identifier``)."""
    if request.user:
        return request.user
    fallback = request.extra.get("safety_identifier")
    return fallback if isinstance(fallback, str) and fallback else None
