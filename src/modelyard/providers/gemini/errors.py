"""Classify Gemini error responses into the core error tree.

Google's error body is ``{"error": {"code", "message", "status", "details": [...]}}`` where
``status`` is the gRPC code name and ``details`` holds typed messages (``ErrorInfo`` with a
``reason``, ``RetryInfo`` with a ``retryDelay`` such as ``"13s"``). Decisions:

* A rejected key is 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID`` (not 401), a missing
  or unauthorised one 403 ``PERMISSION_DENIED``: both are the gateway's credentials, so they
  become ``UpstreamError`` without the upstream's text, never the client's 400/403.
* 400 ``FAILED_PRECONDITION`` means, per Google's docs, that the project's free tier is not
  available in its region and billing must be enabled, and 402 that prepaid credit ran out: the
  operator's account, not the client's request, so ``UpstreamError`` (502) with the message.
* Other 4xx are the client's request (``InvalidRequest``), except 404 (the operator's target is
  wrong), 413 and 429 (``RateLimited``, delay from ``Retry-After`` or else ``RetryInfo``).
* 503 ``UNAVAILABLE`` → ``UpstreamUnavailable``; 504 ``DEADLINE_EXCEEDED`` → ``UpstreamTimeout``;
  other 5xx → ``UpstreamError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
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

_DURATION = re.compile(r"(?P<seconds>\d+(?:\.\d+)?)s")
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_CREDENTIAL_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_EXPIRED"})
_MAX_MESSAGE = 500


@dataclass(slots=True)
class GoogleError:
    message: str
    status: str | None = None
    details: list[Mapping[str, Any]] = field(default_factory=list)

    def reasons(self) -> set[str]:
        return {str(d["reason"]) for d in self.details if isinstance(d.get("reason"), str)}

    def retry_delay(self) -> float | None:
        """Seconds from a ``RetryInfo`` detail (a protobuf Duration such as ``"13.5s"``)."""
        for detail in self.details:
            if detail.get("@type") != _RETRY_INFO:
                continue
            match = _DURATION.fullmatch(str(detail.get("retryDelay", "")))
            if match is not None:
                return float(match["seconds"])
        return None


def parse_error(body: bytes | str) -> GoogleError:
    """The error in ``body``, tolerating bodies that are not Google's shape."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return GoogleError(text.strip()[:_MAX_MESSAGE] or "(empty body)")
    # Some Google front ends wrap the error in a one-element list.
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return GoogleError(str(data)[:_MAX_MESSAGE])
    details = [d for d in err.get("details") or () if isinstance(d, Mapping)]
    status = err.get("status")
    return GoogleError(
        str(err.get("message") or status or "error")[:_MAX_MESSAGE],
        status if isinstance(status, str) else None,
        details,
    )


def classify_error(
    status: int, headers: Mapping[str, str], body: bytes | str, label: str
) -> ModelyardError:
    """Translate an upstream error response into the core error the client should see."""
    err = parse_error(body)
    named = f"HTTP {status} {err.status}" if err.status else f"HTTP {status}"
    detail = f"{label}: upstream answered {named}: {err.message}"
    if status in (401, 403) or err.reasons() & _CREDENTIAL_REASONS:
        # The client's key is fine; ours is not. Google's text may echo key fragments.
        return UpstreamError(
            f"{label}: the upstream rejected the gateway's credentials (HTTP {status})",
            upstream_status=status,
            code="upstream_auth",
        )
    if status == 402 or err.status == "FAILED_PRECONDITION":
        return UpstreamError(detail, upstream_status=status, code="upstream_account")
    if status == 404:
        return UpstreamError(detail, upstream_status=status, code="upstream_not_found")
    if status == 413:
        return PayloadTooLarge(detail)
    if status == 429:
        delay = retry_after_seconds(headers)
        return RateLimited(
            detail,
            code="upstream_rate_limited",
            retry_after=delay if delay is not None else err.retry_delay(),
        )
    if status in (408, 504) or err.status == "DEADLINE_EXCEEDED":
        return UpstreamTimeout(detail, upstream_status=status)
    if 400 <= status < 500:
        return InvalidRequest(detail, code="upstream_rejected")
    if status == 503 or err.status == "UNAVAILABLE":
        return UpstreamUnavailable(
            detail, upstream_status=status, retry_after=retry_after_seconds(headers)
        )
    return UpstreamError(detail, upstream_status=status)


def error_status(body: bytes | str) -> int:
    """The HTTP status an in-stream ``{"error": ...}`` event stands for (500 when unknown)."""
    try:
        data = orjson.loads(body)
        code = data["error"]["code"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return 500
    return code if isinstance(code, int) and 400 <= code <= 599 else 500
