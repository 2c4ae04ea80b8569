"""Wire-level pieces of the fake OpenAI upstream: ids, token counts, JSON and error bodies.

Error bodies follow OpenAI's documented envelope, ``{"error": {"message", "type", "param",
"code"}}``; the messages are modelled on the ones the real API sends so that code which shows
them to users is exercised with realistic text.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

JSONObject = dict[str, Any]

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_WORD = re.compile(r"\s*\S+")


class IdFactory:
    """Makes OpenAI-looking ids that are the same in every run of the same test sequence.

    Real ids are random; deterministic ones keep test failures reproducible while still
    looking like ``chatcmpl-...`` / ``call_...`` / ``req_...`` to code that inspects them.
    """

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def make(self, prefix: str, length: int) -> str:
        with self._lock:
            serial = next(self._counter)
        digest = hashlib.sha256(f"{prefix}:{serial}".encode()).digest()
        while len(digest) < length:
            digest += hashlib.sha256(digest).digest()
        return prefix + "".join(_ALPHABET[byte % len(_ALPHABET)] for byte in digest[:length])

    def completion(self) -> str:
        return self.make("chatcmpl-", 29)

    def tool_call(self) -> str:
        return self.make("call_", 24)

    def request(self) -> str:
        return "req_" + hashlib.sha256(self.make("req", 16).encode()).hexdigest()[:32]


def fingerprint(model: str) -> str:
    """A stable ``system_fingerprint`` per model, shaped like OpenAI's ``fp_<10 hex>``."""
    return "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10]


def count_tokens(text: str) -> int:
    """The fake's tokenizer: one token per whitespace-separated word, so tests can predict it."""
    return len(text.split())


def split_words(text: str) -> list[str]:
    """Split ``text`` into word pieces that keep their leading whitespace and join back exactly."""
    pieces = _WORD.findall(text)
    rest = text[len("".join(pieces)) :]
    if rest:
        if pieces:
            pieces[-1] += rest
        else:
            pieces.append(rest)
    return pieces


def json_response(
    payload: object, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(payload), status_code=status, headers=headers, media_type="application/json"
    )


def error_response(
    status: int,
    message: str,
    error_type: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return json_response(body, status=status, headers=headers)


def mask_key(key: str) -> str:
    """Mask a key the way OpenAI's 401 message does: enough to recognise it, not to reuse it."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def missing_api_key() -> Response:
    return error_response(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API "
        "key from https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
    )


def invalid_api_key(provided: str) -> Response:
    return error_response(
        401,
        f"Incorrect API key provided: {mask_key(provided)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        code="invalid_api_key",
    )


def model_not_found(model: str) -> Response:
    return error_response(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        code="model_not_found",
    )


def invalid_url(method: str, path: str, status: int = 404) -> Response:
    return error_response(status, f"Invalid URL ({method} {path})", "invalid_request_error")


def unparseable_body() -> Response:
    return error_response(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON.)",
        "invalid_request_error",
    )


def missing_parameter(name: str) -> Response:
    return error_response(
        400,
        f"Missing required parameter: '{name}'.",
        "invalid_request_error",
        param=name,
        code="missing_required_parameter",
    )


def invalid_value(param: str, detail: str, code: str = "invalid_value") -> Response:
    return error_response(
        400, f"Invalid '{param}': {detail}", "invalid_request_error", param=param, code=code
    )


def server_error(status: int = 500) -> Response:
    return error_response(
        status,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
    )


def overloaded() -> Response:
    return error_response(503, "The server is overloaded or not ready yet.", "server_error")


def rate_limit_headers(remaining_requests: int) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-requests": str(remaining_requests),
        "x-ratelimit-remaining-tokens": "29000" if remaining_requests else "0",
        "x-ratelimit-reset-requests": "2s",
        "x-ratelimit-reset-tokens": "120ms",
    }


def rate_limited(model: str) -> Response:
    # The real API names the exhausted meter in "type" ("requests" or "tokens") and puts
    # "rate_limit_exceeded" in "code"; clients are meant to key on the status and the code.
    return error_response(
        429,
        f"Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
        "Limit 500, Used 500, Requested 1. Please try again in 2s. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
        "requests",
        code="rate_limit_exceeded",
        headers={"retry-after": "2", **rate_limit_headers(0)},
    )
