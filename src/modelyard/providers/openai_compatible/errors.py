"""OpenAI-style error bodies (``{"error": {message, type, param, code}}``) → upstream facts.

Compatible vendors vary the body (a bare string, ``{"message": ...}``, plain text from a proxy);
all are read here. The one refinement of the status: OpenAI answers a spent prepaid balance
with 429 ``insufficient_quota``, which is our account, not a rate to wait out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from modelyard.core.errors import ModelyardError
from modelyard.providers.errors import Cause, UpstreamFailure, to_error
from modelyard.providers.transport import retry_after_seconds

_CAUSES: Final[Mapping[str, Cause]] = {
    "insufficient_quota": "account",
    "billing_hard_limit_reached": "account",
    "invalid_api_key": "credentials",
    "context_length_exceeded": "invalid_request",
}


def classify_error(
    status: int, headers: Mapping[str, str], body: bytes, label: str
) -> ModelyardError:
    """Translate an upstream error response into the core error the client should see."""
    return to_error(http_failure(status, headers, body), label)


def http_failure(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamFailure:
    """The facts of an error response."""
    message, code, param = _error_fields(_loads(body), body)
    return UpstreamFailure(
        status,
        message,
        vendor_code=code,
        request_id=headers.get("x-request-id"),
        retry_after=retry_after_seconds(headers),
        param=param,
        cause=_CAUSES.get(code or ""),
    )


def stream_failure(data: Mapping[str, Any], raw: str) -> UpstreamFailure:
    """The facts of an ``{"error": ...}`` chunk sent after the stream began (no status)."""
    message, code, param = _error_fields(data, raw.encode())
    return UpstreamFailure(
        None,
        message,
        vendor_code=code,
        stream_started=True,
        param=param,
        cause=_CAUSES.get(code or ""),
    )


def _loads(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _error_fields(data: object, body: bytes) -> tuple[str, str | None, str | None]:
    """``(message, vendor code, param)`` from whatever shape the body has."""
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        code = err.get("code") or err.get("type")
        param = err.get("param")
        return (
            str(err.get("message") or code or "error"),
            str(code) if isinstance(code, str | int) else None,
            param if isinstance(param, str) else None,
        )
    if isinstance(err, str):
        return err, None, None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"], None, None
    text = body.decode("utf-8", "replace").strip()
    return (text[:300] or "(empty body)"), None, None
