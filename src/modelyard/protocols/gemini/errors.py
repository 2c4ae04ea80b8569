"""Render core errors in Google's error shape: ``{"error": {"code", "message", "status"}}``.

``code`` is the HTTP status the gateway answers with; ``status`` is the google.rpc code name the
SDKs and Gemini CLI read: ``INVALID_ARGUMENT`` (400, 413), ``UNAUTHENTICATED`` (401),
``PERMISSION_DENIED`` (403), ``NOT_FOUND`` (404), ``RESOURCE_EXHAUSTED`` (429, and the 402 of a
spent budget: Google reports quota of every kind that way), ``UNAVAILABLE`` (502, 503: the
upstream failed or is overloaded; Google's clients retry it), ``DEADLINE_EXCEEDED`` (504),
``INTERNAL`` (500). The HTTP status stays the gateway's, as in the other dialects.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import orjson

from modelyard.core.errors import ModelyardError, clipped

_STATUS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "invalid_request": "INVALID_ARGUMENT",
        "authentication": "UNAUTHENTICATED",
        "permission": "PERMISSION_DENIED",
        "not_found": "NOT_FOUND",
        "request_too_large": "INVALID_ARGUMENT",
        "rate_limit": "RESOURCE_EXHAUSTED",
        "insufficient_quota": "RESOURCE_EXHAUSTED",
        "upstream": "UNAVAILABLE",
        "timeout": "DEADLINE_EXCEEDED",
        "internal": "INTERNAL",
    }
)
# Every message is bounded: it can quote a client's input (a field's value, a model name).
_MAX_MESSAGE = 2_000


def status_name(err: ModelyardError) -> str:
    return _STATUS.get(err.kind, "INTERNAL")


def error_object(err: ModelyardError) -> dict[str, object]:
    return {
        "error": {
            "code": err.status,
            "message": clipped(err.message, _MAX_MESSAGE),
            "status": status_name(err),
        }
    }


def error_body(err: ModelyardError, _request_id: str = "") -> bytes:
    return orjson.dumps(error_object(err))
