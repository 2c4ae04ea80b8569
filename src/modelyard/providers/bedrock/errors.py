"""Bedrock Runtime failures → the core error tree.

An error response names its exception in the ``x-amzn-ErrorType`` header (``Name:namespace``)
with ``{"message": ...}`` as the body; after a stream has started, the same exceptions arrive as
event-stream frames whose ``:exception-type`` header names them in lower camel case
(``throttlingException``). Both are reduced to upstream facts (the policy is
``providers.errors``): the status (for a frame, the one the service model gives the exception),
and a cause where the name says more than the status does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import orjson

from modelyard.core.errors import ModelyardError, UpstreamError
from modelyard.providers.bedrock.eventstream import Frame
from modelyard.providers.errors import Cause, UpstreamFailure, to_error
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
# Names that say more than their status: a quota refused as 400, a model still loading as 429.
_CAUSES: Final[Mapping[str, Cause]] = {
    **dict.fromkeys(_CREDENTIALS, "credentials"),
    "ThrottlingException": "rate_limited",
    "ServiceQuotaExceededException": "rate_limited",
    "ServiceUnavailableException": "unavailable",
    "ModelNotReadyException": "unavailable",
    "ModelTimeoutException": "timeout",
    "ResourceNotFoundException": "not_found",
    "ModelErrorException": "model_error",
    "ModelStreamErrorException": "model_error",
    "ValidationException": "invalid_request",
}
# The status the service model gives each exception, for frames, which carry none.
_STATUS: Final[Mapping[str, int]] = {
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ModelStreamErrorException": 424,
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 400,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}


def error_name(raw: str | None) -> str | None:
    """``ValidationException`` from ``ValidationException:http://internal.amazon.com/...``."""
    if not raw:
        return None
    return raw.split(":", 1)[0].rsplit("#", 1)[-1].strip() or None


def classify_http(
    status: int, headers: Mapping[str, str], body: bytes, label: str
) -> ModelyardError:
    """Translate a non-2xx response into the core error the client should see."""
    return to_error(http_failure(status, headers, body), label)


def http_failure(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamFailure:
    """The facts of a non-2xx response: the exception's name, then its status."""
    name = error_name(headers.get("x-amzn-errortype")) or _body_name(body)
    return UpstreamFailure(
        status,
        _message(body),
        vendor_code=name,
        request_id=headers.get("x-amzn-requestid"),
        retry_after=retry_after_seconds(headers),
        cause=_CAUSES.get(name or ""),
    )


def classify_frame(frame: Frame, label: str) -> ModelyardError:
    """Translate an ``exception`` (or protocol ``error``) frame received mid-stream."""
    if frame.message_type == "error":
        code = frame.header(":error-code") or "error"
        text = frame.header(":error-message") or "(no message)"
        return UpstreamError(f"{label}: the upstream stream failed: {code}: {text}")
    raw = frame.header(":exception-type") or "internalServerException"
    name = raw[:1].upper() + raw[1:]
    failure = UpstreamFailure(
        _STATUS.get(name, 500),
        _message(frame.payload),
        vendor_code=name,
        stream_started=True,
        cause=_CAUSES.get(name),
    )
    return to_error(failure, label)


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
