"""Render core errors in the Messages API's error shape.

``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``, with the HTTP
status the core error carries. Types by core kind, as the API documents them: 400
``invalid_request_error``, 401 ``authentication_error``, 403 ``permission_error``, 404
``not_found_error``, 413 ``request_too_large``, 429 ``rate_limit_error``, 500 ``api_error``,
504 ``timeout_error``, 529 ``overloaded_error``.

Where the gateway's status differs from the vendor's, the status stays the gateway's:

* An upstream failure (core 502) is an ``api_error``: the API has no 502 of its own, and the
  SDKs treat every 5xx alike (an ``InternalServerError``, retried).
* An overloaded or unavailable upstream (core 503) is an ``overloaded_error`` with status 503,
  not 529: 529 is not a registered HTTP status, and proxies, load balancers and monitoring in
  front of the gateway understand 503. The SDKs still see a retryable 5xx; only the exception
  subclass differs (``ServiceUnavailableError`` instead of ``OverloadedError``).
* A timeout (core 504) is a ``timeout_error`` with status 504, which the SDKs map to their
  gateway-timeout error.

``retry-after`` (whole seconds, at least 1) goes out whenever the core error knows one.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

import orjson

from modelyard.core.errors import ModelyardError, clipped

_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "insufficient_quota": "billing_error",
    "upstream": "api_error",
    "timeout": "timeout_error",
    "internal": "api_error",
}


def error_type(err: ModelyardError) -> str:
    if err.kind == "upstream" and err.status == 503:
        return "overloaded_error"
    return _TYPES.get(err.kind, "api_error")


# The Messages API's name of a field a capability error names in the canonical request.
_FIELDS: Final = MappingProxyType({"response_format": "output_config.format"})


def _message(err: ModelyardError) -> str:
    """The error's message; a capability the target lacks names the field that asks for it
    first (the Messages API has no ``param``: ``max_tokens: model 'x' does not support ...``)."""
    if err.code == "unsupported_capability" and err.param:
        return f"{_FIELDS.get(err.param, err.param)}: {err.message}"
    return err.message


def error_body(err: ModelyardError, request_id: str | None = None) -> bytes:
    body: dict[str, object] = {
        "type": "error",
        "error": {"type": error_type(err), "message": _bounded(_message(err))},
    }
    if request_id is not None:
        body["request_id"] = request_id
    return orjson.dumps(body)


def stream_error_frame(err: ModelyardError, request_id: str | None = None) -> bytes:
    """An error after the stream has begun: one ``error`` event; no ``message_stop`` follows."""
    return b"event: error\ndata: " + error_body(err, request_id) + b"\n\n"


# Every message is bounded: it can quote a client's input (a field's value, a model name).
_MAX_MESSAGE = 2_000


def _bounded(message: str) -> str:
    return clipped(message, _MAX_MESSAGE)
