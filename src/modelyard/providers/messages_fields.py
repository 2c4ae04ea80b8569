"""What an upstream of another API does with a Messages API client's own fields.

A Messages client (Claude Code above all) sends fields that only Anthropic's API knows, most of
them behind an ``anthropic-beta``. At an upstream of another API each is translated, dropped
knowingly (it asks the vendor for bookkeeping or server-side work that has no counterpart
there, and the answer does not depend on it) or refused by name (only the vendor can do it):

================== ===============================================================================
field              at a Gemini or Bedrock Converse upstream (OpenAI-compatible upstreams take no
                   extras from this dialect at all, see ``providers.extras``)
================== ===============================================================================
``thinking``       Gemini: ``enabled`` with ``budget_tokens``: ``thinkingConfig.thinkingBudget``;
                   ``adaptive`` and ``disabled``: dropped (the model's own default applies).
                   Bedrock: sent as written in ``additionalModelRequestFields`` (Claude's own)
``top_k``          Gemini: ``topK``; Bedrock: ``additionalModelRequestFields.top_k``
``output_config``  dropped (``effort``: not every model takes a reasoning setting; ``format`` is
                   decoded into the core's JSON-schema format before it gets here)
``context_management`` dropped (clearing old tool results and thinking is Anthropic's server-side
                   context editing; the conversation is sent whole)
``cache_control``  dropped (top-level automatic caching; other vendors cache prefixes on their
                   own or not at all)
``service_tier``, ``inference_geo`` dropped (Anthropic's capacity and region bookkeeping)
``container``, ``mcp_servers`` refused with a 400 naming the field: only Anthropic runs them
                   (at OpenAI-compatible upstreams too)
================== ===============================================================================
"""

from __future__ import annotations

from typing import Any

from modelyard.core.chat import ChatRequest
from modelyard.providers.extras import unsupported_field

ORIGIN = "anthropic"
DROPPED = frozenset(
    {"output_config", "context_management", "cache_control", "service_tier", "inference_geo"}
)
REFUSED = frozenset({"container", "mcp_servers"})


def foreign_extras(request: ChatRequest, provider: str) -> dict[str, Any]:
    """``request.extra`` for an upstream of another API: the Messages client's fields dropped or
    refused as the table above says; every other field is left to the codec's own rules."""
    if request.extra_origin != ORIGIN:
        return request.extra
    out: dict[str, Any] = {}
    for key, value in request.extra.items():
        if key in REFUSED:
            raise unsupported_field(key, provider, "only Anthropic's Messages API runs it")
        if key not in DROPPED:
            out[key] = value
    return out
