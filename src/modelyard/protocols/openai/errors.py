"""Render core errors in OpenAI's error shape: ``{"error": {message, type, param, code}}``."""

from __future__ import annotations

import orjson

from modelyard.core.errors import ModelyardError, clipped

_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "insufficient_quota": "insufficient_quota",
    "upstream": "server_error",
    "timeout": "timeout_error",
    "internal": "server_error",
    "tool_server": "external_connector_error",
}


def error_body(err: ModelyardError) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "message": _bounded(err.message),
                "type": _TYPES.get(err.kind, "server_error"),
                "param": clipped(err.param) if err.param else None,
                "code": err.code,
            }
        }
    )


def stream_error_frame(err: ModelyardError) -> bytes:
    """An error after the stream has begun: one SSE frame with the error object, as OpenAI sends."""
    return b"data: " + error_body(err) + b"\n\n"


# Every message is bounded: it can quote a client's input (a field's value, a model name).
_MAX_MESSAGE = 2_000


def _bounded(message: str) -> str:
    return clipped(message, _MAX_MESSAGE)
