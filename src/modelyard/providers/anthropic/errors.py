"""Classify Messages API errors (``{"type": "error", "error": {"type", "message"}}``) into core.

The same classification serves an HTTP error status and an ``event: error`` that arrives after
a 200 stream has begun; the latter carries only the error type, so the type is mapped back to
the status the API documents for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelyard.core.errors import (
    InvalidRequest,
    ModelyardError,
    PayloadTooLarge,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
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
    message, request_id = _parse(body)
    request_id = headers.get("request-id") or request_id
    return _classify(status, message, request_id, retry_after_seconds(headers), label)


def stream_error(data: Mapping[str, Any], label: str) -> ModelyardError:
    """The core error for an in-stream ``error`` event."""
    err = data.get("error")
    err = err if isinstance(err, Mapping) else {}
    kind = err.get("type")
    status = ERROR_STATUS.get(kind, 500) if isinstance(kind, str) else 500
    message = str(err.get("message") or kind or "error")
    request_id = data.get("request_id")
    return _classify(
        status, message, request_id if isinstance(request_id, str) else None, None, label
    )


def _classify(
    status: int, message: str, request_id: str | None, retry_after: float | None, label: str
) -> ModelyardError:
    suffix = f" (upstream request id {request_id})" if request_id else ""
    detail = f"{label}: upstream answered HTTP {status}: {message}{suffix}"
    if status in (401, 402, 403):
        # The client is fine; the gateway's key or account is not. The upstream's text is not
        # forwarded: it may echo key fragments and means nothing to the client.
        return UpstreamError(
            f"{label}: the upstream rejected the gateway's credentials or account "
            f"(HTTP {status}){suffix}",
            upstream_status=status,
        )
    if status in (408, 504):
        return UpstreamTimeout(detail, upstream_status=status)
    if status == 413:
        return PayloadTooLarge(detail)
    if status == 429:
        return RateLimited(detail, code="upstream_rate_limited", retry_after=retry_after)
    if status in (503, 529):
        return UpstreamUnavailable(detail, upstream_status=status, retry_after=retry_after)
    if status == 404:
        return UpstreamError(detail, upstream_status=status, code="upstream_not_found")
    if 400 <= status < 500:
        return InvalidRequest(detail, code="upstream_rejected")
    return UpstreamError(detail, upstream_status=status)


def _parse(body: bytes) -> tuple[str, str | None]:
    """``(message, request id)`` from an error body, whatever shape it has."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return (text[:300] or "(empty body)"), None
    if not isinstance(data, dict):
        return body.decode("utf-8", "replace")[:300], None
    request_id = data.get("request_id")
    request_id = request_id if isinstance(request_id, str) else None
    err = data.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or err.get("type") or "error"), request_id
    return body.decode("utf-8", "replace")[:300], request_id
