"""Messages API errors (``{"type": "error", "error": {"type", "message"}}``) → upstream facts.

The policy is ``providers.errors``. The same reading serves an HTTP error status and an
``event: error`` that arrives after a 200 stream has begun; the latter carries only the error
type, so the type is mapped back to the status the API documents for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelyard.core.errors import ModelyardError
from modelyard.providers.errors import UpstreamFailure, to_error
from modelyard.providers.transport import retry_after_seconds

# The API's documented status for each error type.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def classify_error(
    status: int, headers: Mapping[str, str], body: bytes, label: str
) -> ModelyardError:
    """Translate an upstream error response into the core error the client should see."""
    return to_error(http_failure(status, headers, body), label)


def http_failure(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamFailure:
    """The facts of an error response."""
    message, kind, request_id = _parse(body)
    return UpstreamFailure(
        status,
        message,
        vendor_code=kind,
        request_id=headers.get("request-id") or request_id,
        retry_after=retry_after_seconds(headers),
    )


def stream_error(data: Mapping[str, Any], label: str) -> ModelyardError:
    """The core error for an in-stream ``error`` event: its type stands for its status."""
    err = data.get("error")
    err = err if isinstance(err, Mapping) else {}
    kind = err.get("type")
    kind = kind if isinstance(kind, str) else None
    request_id = data.get("request_id")
    failure = UpstreamFailure(
        ERROR_STATUS.get(kind, 500) if kind else 500,
        str(err.get("message") or kind or "error"),
        vendor_code=kind,
        request_id=request_id if isinstance(request_id, str) else None,
        stream_started=True,
    )
    return to_error(failure, label)


def _parse(body: bytes) -> tuple[str, str | None, str | None]:
    """``(message, error type, request id)`` from an error body, whatever shape it has."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return (text[:300] or "(empty body)"), None, None
    if not isinstance(data, dict):
        return body.decode("utf-8", "replace")[:300], None, None
    request_id = data.get("request_id")
    request_id = request_id if isinstance(request_id, str) else None
    err = data.get("error")
    if isinstance(err, dict):
        kind = err.get("type")
        kind = kind if isinstance(kind, str) else None
        return str(err.get("message") or kind or "error"), kind, request_id
    return body.decode("utf-8", "replace")[:300], None, request_id
