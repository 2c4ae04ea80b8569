"""Gemini error responses → upstream facts (the policy is ``providers.errors``).

Google's error body is ``{"error": {"code", "message", "status", "details": [...]}}`` where
``status`` is the gRPC code name and ``details`` holds typed messages (``ErrorInfo`` with a
``reason``, ``RetryInfo`` with a ``retryDelay`` such as ``"13s"``). Where the code says more than
the HTTP status, it names the cause:

* A rejected key is 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID`` (not 401): the
  gateway's credentials, never the client's 400.
* 400 ``FAILED_PRECONDITION`` means, per Google's docs, that the project's free tier is not
  available in its region and billing must be enabled: the operator's account.
* ``DEADLINE_EXCEEDED`` is a timeout and ``UNAVAILABLE`` an unavailable service whatever the
  status; a 429's delay comes from ``Retry-After``, else from ``RetryInfo``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from modelyard.core.errors import ModelyardError
from modelyard.providers.errors import Cause, UpstreamFailure, to_error
from modelyard.providers.transport import retry_after_seconds

_DURATION = re.compile(r"(?P<seconds>\d+(?:\.\d+)?)s")
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_CREDENTIAL_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_EXPIRED"})
_MAX_MESSAGE = 500
_CAUSES: Final[Mapping[str, Cause]] = {
    "FAILED_PRECONDITION": "account",
    "DEADLINE_EXCEEDED": "timeout",
    "UNAVAILABLE": "unavailable",
}


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
    return to_error(failure_of(status, headers, body), label)


def failure_of(
    status: int, headers: Mapping[str, str], body: bytes | str, *, stream_started: bool = False
) -> UpstreamFailure:
    """The facts of an error response (or of an error object sent mid-stream)."""
    err = parse_error(body)
    delay = retry_after_seconds(headers)
    return UpstreamFailure(
        status,
        err.message,
        vendor_code=err.status,
        retry_after=delay if delay is not None else err.retry_delay(),
        stream_started=stream_started,
        cause=_cause(err),
    )


def _cause(err: GoogleError) -> Cause | None:
    if err.reasons() & _CREDENTIAL_REASONS:
        return "credentials"
    return _CAUSES.get(err.status or "")


def error_status(body: bytes | str) -> int:
    """The HTTP status an in-stream ``{"error": ...}`` event stands for (500 when unknown)."""
    try:
        data = orjson.loads(body)
        code = data["error"]["code"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return 500
    return code if isinstance(code, int) and 400 <= code <= 599 else 500
