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
from modelyard.providers.openai_only import REFUSED_UNLESS_DEFAULT

# Field → predicate telling whether the value asks for something (True means refuse it).
_REFUSED = REFUSED_UNLESS_DEFAULT
# Bookkeeping that changes nothing in the answer.
_DROPPED = frozenset({"store", "prompt_cache_key", "safety_identifier", "verbosity"})
_SERVICE_TIERS = ("auto", "standard_only")
# Consumed by the codec itself (turned into ``thinking``).
_CONSUMED = frozenset({"reasoning_effort"})


def passthrough_extras(request: ChatRequest, provider: str) -> dict[str, Any]:
    """The ``extra`` fields to send as they are; raises on fields that cannot be honoured."""
    out: dict[str, Any] = {}
    for key, value in request.extra.items():
        refuse = _REFUSED.get(key)
        if refuse is not None:
            if refuse(value):
                raise unsupported_field(key, provider)
            continue
        if key in _DROPPED or key in _CONSUMED:
            continue
        if key == "service_tier" and value not in _SERVICE_TIERS:
            continue  # OpenAI's tiers ("default", "flex"...) mean nothing here
        out[key] = value
    return out


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


def unsupported_field(field: str, provider: str, why: str = "") -> InvalidRequest:
    reason = f" ({why})" if why else ""
    return InvalidRequest(
        f"{field}: provider {provider!r} cannot honour this parameter{reason}; remove it or "
        "send its default value",
        param=field,
        code="unsupported_parameter",
    )
