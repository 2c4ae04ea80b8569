"""What happens to request fields Converse has no counterpart for.

A field that would change the answer and that Converse cannot honour (``n`` > 1, ``seed``,
``logit_bias``, penalties, log-probabilities...) is refused with an ``InvalidRequest`` naming it,
rather than silently dropped; its default value (``n: 1``, ``logprobs: false``) asks for nothing
and passes. Bookkeeping fields (``store``, ``prompt_cache_key``, OpenAI's ``service_tier``) are
dropped. Converse's own top-level fields (``additionalModelRequestFields`` for model-specific
parameters such as ``top_k`` or Claude's ``thinking``, ``guardrailConfig``, ``performanceConfig``
...) are sent unchanged. Anything else is refused by name, since Converse rejects unknown fields
and a model-specific one belongs in ``additionalModelRequestFields``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from modelyard.core.chat import ChatRequest
from modelyard.core.errors import InvalidRequest
from modelyard.providers import extras
from modelyard.providers.extras import ExtrasPolicy, unsupported_field
from modelyard.providers.messages_fields import ORIGIN as MESSAGES_ORIGIN
from modelyard.providers.messages_fields import foreign_extras
from modelyard.providers.openai_only import REFUSED_UNLESS_DEFAULT

# Converse request fields a client may set directly; sent as they are.
PASSTHROUGH = frozenset(
    {
        "additionalModelRequestFields",
        "additionalModelResponseFieldPaths",
        "guardrailConfig",
        "performanceConfig",
        "promptVariables",
        "requestMetadata",
        "serviceTier",
        "outputConfig",
    }
)
# Consumed by the codec (``reasoning_effort`` becomes ``outputConfig.effort``).
CONSUMED = frozenset({"reasoning_effort"})
EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh"}
# The rule (see ``providers.extras``): from any dialect, OpenAI-only features that change the
# answer are refused unless default, bookkeeping is dropped, Converse's own top-level fields are
# sent, and any other name is refused.
EXTRAS = ExtrasPolicy(
    "Bedrock Converse",
    refused=REFUSED_UNLESS_DEFAULT,
    dropped=frozenset(
        {"store", "prompt_cache_key", "safety_identifier", "verbosity", "service_tier"}
        | {"safety_settings"}  # a Gemini client's: Bedrock has guardrails of its own
    ),
    consumed=CONSUMED,
    allowed=PASSTHROUGH,
    hint="; put model-specific parameters in additionalModelRequestFields",
)


def passthrough_extras(request: ChatRequest, provider: str) -> dict[str, Any]:
    """The ``extra`` fields to send as they are; raises on fields that cannot be honoured.

    A Messages API client's own fields are first dropped or refused as
    ``providers.messages_fields`` says; its ``thinking`` and ``top_k`` are Claude's
    model-specific parameters, sent in ``additionalModelRequestFields``."""
    if request.extra_origin != MESSAGES_ORIGIN:
        return extras.passthrough_extras(request, EXTRAS, provider)
    own = dict(foreign_extras(request, provider))
    model_fields = {key: own.pop(key) for key in ("thinking", "top_k") if key in own}
    out = extras.passthrough_extras(replace(request, extra=own), EXTRAS, provider)
    if model_fields:
        merged = dict(out.get("additionalModelRequestFields") or {})
        merged.update(model_fields)
        out["additionalModelRequestFields"] = merged
    return out


def check_core_fields(request: ChatRequest, provider: str) -> None:
    if request.n is not None and request.n > 1:
        raise unsupported_field("n", provider, "Converse returns exactly one choice per request")
    if request.seed is not None:
        raise unsupported_field("seed", provider, "Converse has no sampling seed")


def effort(request: ChatRequest) -> str | None:
    """``outputConfig.effort`` for the client's ``reasoning_effort`` (``none`` means no field)."""
    value = request.extra.get("reasoning_effort")
    if value is None or value == "none":
        return None
    if value not in EFFORTS:
        raise InvalidRequest(
            f"reasoning_effort: must be one of none, {', '.join(EFFORTS)}; got {value!r}",
            param="reasoning_effort",
        )
    return EFFORTS[value]


def request_metadata(request: ChatRequest) -> dict[str, str] | None:
    """``requestMetadata`` (kept in invocation logs): the client's metadata plus ``user``."""
    merged: dict[str, str] = dict(request.metadata or {})
    if request.user and "user" not in merged:
        merged["user"] = request.user
    return merged or None
