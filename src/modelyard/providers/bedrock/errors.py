"""Bedrock Runtime failures → the core error tree.

An error response names its exception in the ``x-amzn-ErrorType`` header (``Name:namespace``)
with ``{"message": ...}`` as the body; after a stream has started, the same exceptions arrive as
event-stream frames whose ``:exception-type`` header names them in lower camel case
(``throttlingException``). Both are classified by name first, then by status.
"""

from __future__ import annotations

from collections.abc import Mapping

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
from modelyard.providers.bedrock.eventstream import Frame
from modelyard.providers.transport import retry_after_seconds

# Our credentials or permissions are at fault, not the client's request: the upstream's text
# is dropped because it can quote key ids and account numbers.
_CREDENTIALS = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    }
)
_UNAVAILABLE = frozenset({"ServiceUnavailableException", "ModelNotReadyException"})
# An account quota, not a malformed request: the same call may pass later or elsewhere.
_RATE_LIMITED = frozenset({"ThrottlingException", "ServiceQuotaExceededException"})


def error_name(raw: str | None) -> str | None:
    """``ValidationException`` from ``ValidationException:http://internal.amazon.com/...``."""
    if not raw:
        return None
    return raw.split(":", 1)[0].rsplit("#", 1)[-1].strip() or None


def classify_http(
    status: int, headers: Mapping[str, str], body: bytes, label: str
) -> ModelyardError:
    """Translate a non-2xx response into the core error the client should see."""
    name = error_name(headers.get("x-amzn-errortype")) or _body_name(body)
    return _classify(name, status, _message(body), headers, label)


def classify_frame(frame: Frame, label: str) -> ModelyardError:
    """Translate an ``exception`` (or protocol ``error``) frame received mid-stream."""
    if frame.message_type == "error":
        code = frame.header(":error-code") or "error"
        text = frame.header(":error-message") or "(no message)"
        return UpstreamError(f"{label}: the upstream stream failed: {code}: {text}")
    raw = frame.header(":exception-type") or "internalServerException"
    name = raw[:1].upper() + raw[1:]
    return _classify(name, None, _message(frame.payload), {}, label)


def _classify(
    name: str | None, status: int | None, message: str, headers: Mapping[str, str], label: str
) -> ModelyardError:
    shown = f"HTTP {status}" if status is not None else "mid-stream"
    detail = f"{label}: upstream answered {name or 'an error'} ({shown}): {message}"
    if name in _CREDENTIALS or status in (401, 403):
        return UpstreamError(
            f"{label}: the upstream rejected the gateway's credentials ({name or status})",
            upstream_status=status,
        )
    if name in _RATE_LIMITED or (status == 429 and name != "ModelNotReadyException"):
        return RateLimited(
            detail, code="upstream_rate_limited", retry_after=retry_after_seconds(headers)
        )
    if name in _UNAVAILABLE or status == 503:
        return UpstreamUnavailable(
            detail, upstream_status=status, retry_after=retry_after_seconds(headers)
        )
    if name == "ModelTimeoutException" or status in (408, 504):
        return UpstreamTimeout(detail, upstream_status=status)
    if name == "ResourceNotFoundException" or status == 404:
        return UpstreamError(detail, upstream_status=status, code="upstream_not_found")
    if name in ("ModelErrorException", "ModelStreamErrorException"):
        return UpstreamError(detail, upstream_status=status, code="upstream_model_error")
    if status == 413:
        return PayloadTooLarge(detail)
    if name == "ValidationException" or (status is not None and 400 <= status < 500):
        return InvalidRequest(detail, code="upstream_rejected")
    return UpstreamError(detail, upstream_status=status)


def _parse(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _message(body: bytes) -> str:
    data = _parse(body)
    if isinstance(data, dict):
        for key in ("message", "Message", "originalMessage"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value[:500]
    text = body.decode("utf-8", "replace").strip()
    return text[:300] or "(empty body)"


def _body_name(body: bytes) -> str | None:
    """Some front ends put the name in the body (``__type``, ``code``) instead of the header."""
    data = _parse(body)
    if not isinstance(data, dict):
        return None
    for key in ("__type", "code", "Code"):
        value = data.get(key)
        if isinstance(value, str):
            return error_name(value)
    return None
