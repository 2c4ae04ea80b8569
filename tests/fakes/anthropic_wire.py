"""Wire-level pieces of the fake Anthropic upstream: ids, signatures, JSON and error bodies.

Error bodies follow the Messages API's documented envelope, ``{"type": "error", "error":
{"type", "message"}, "request_id"}``, with the status the API documents for each error type.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

import orjson
from starlette.responses import Response

from .openai_wire import IdFactory

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
ORGANIZATION_ID = "0b6a3f2e-7c1d-4f5e-9a8b-2c3d4e5f6a7b"


class AnthropicIds:
    """Anthropic-looking ids (``msg_01...``, ``toolu_01...``, ``req_01...``), reproducible."""

    def __init__(self) -> None:
        self._ids = IdFactory()

    def message(self) -> str:
        return self._ids.make("msg_01", 22)

    def tool_use(self) -> str:
        return self._ids.make("toolu_01", 22)

    def server_tool_use(self) -> str:
        return self._ids.make("srvtoolu_01", 22)

    def request(self) -> str:
        return self._ids.make("req_01", 22)


# The fake's redacted thinking: opaque (encrypted, for the real API), checked when sent back.
REDACTED_DATA = base64.b64encode(
    hashlib.sha256(b"fake-anthropic-redacted-thinking").digest() * 4
).decode()


def signature_for(thinking: str) -> str:
    """The fake's thinking signature: opaque to clients, checkable by the fake when sent back."""
    digest = hashlib.sha256(b"fake-anthropic-thinking:" + thinking.encode()).digest()
    return base64.b64encode(digest * 3).decode()


def json_response(
    payload: object, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(payload), status_code=status, headers=headers, media_type="application/json"
    )


def error_body(error_type: str, message: str, request_id: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def error_response(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> Response:
    error_type = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return json_response(error_body(error_type, message), status=status, headers=headers)


def invalid(message: str) -> Response:
    return error_response(400, message)


def rate_limit_headers(remaining: int) -> dict[str, str]:
    return {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": str(remaining),
        "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:02Z",
        "anthropic-ratelimit-input-tokens-limit": "40000",
        "anthropic-ratelimit-input-tokens-remaining": "39000" if remaining else "0",
    }


def failure(status: int, model: str) -> Response:
    """The real API's error response for ``status`` (a generic one for unusual statuses)."""
    if status == 400:
        return invalid("messages.0.content: Input should be a valid list")
    if status == 401:
        return error_response(401, "invalid x-api-key")
    if status == 403:
        return error_response(403, "Your API key does not have permission to use this resource.")
    if status == 404:
        return error_response(404, f"model: {model}")
    if status == 413:
        return error_response(413, "Request exceeds the maximum allowed number of bytes.")
    if status == 429:
        return error_response(
            429,
            "This request would exceed the rate limit for your organization of 50 requests per "
            "minute. Please reduce the prompt length or the maximum tokens requested, or try "
            "again later.",
            headers={"retry-after": "2", **rate_limit_headers(0)},
        )
    if status == 529:
        return error_response(529, "Overloaded")
    if status >= 500:
        return error_response(status, "Internal server error")
    return error_response(status, f"Simulated failure {status}.")
