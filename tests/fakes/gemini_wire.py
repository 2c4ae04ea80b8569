"""Wire-level pieces of the fake Gemini upstream: Google's error bodies and request checks.

Errors use Google's envelope, ``{"error": {"code", "message", "status", "details"}}``, with
``details`` entries typed by ``@type`` (``ErrorInfo``, ``RetryInfo``, ``QuotaFailure``...), and
messages modelled on the ones the real API sends. The request checks reject, with Google's
wording, what the real endpoint rejects before generating: unknown fields (Google's JSON parser
refuses them), empty turns, unknown roles, undecodable inline data, conflicting options.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

JSONObject = dict[str, Any]

_TYPE = "type.googleapis.com/google.rpc."
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL",
    501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}  # fmt: skip
_TOP_LEVEL = frozenset(
    {
        "contents", "systemInstruction", "system_instruction", "tools", "toolConfig",
        "safetySettings", "generationConfig", "cachedContent",
    }
)  # fmt: skip
_GENERATION = frozenset(
    {
        "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
        "responseModalities", "candidateCount", "maxOutputTokens", "temperature", "topP", "topK",
        "seed", "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs",
        "enableEnhancedCivicAnswers", "speechConfig", "thinkingConfig", "mediaResolution",
    }
)  # fmt: skip
_THINKING = frozenset({"thinkingBudget", "thinkingLevel", "includeThoughts"})
_PART_DATA = ("text", "inlineData", "functionCall", "functionResponse", "fileData")
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}")


def json_response(
    payload: object, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(payload), status_code=status, headers=headers, media_type="application/json"
    )


def google_error(
    code: int, message: str, details: list[JSONObject] | None = None, status: str | None = None
) -> Response:
    error: JSONObject = {
        "code": code,
        "message": message,
        "status": status or _STATUS_NAMES.get(code, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return json_response({"error": error}, status=code)


def error_info(reason: str, **metadata: str) -> JSONObject:
    return {
        "@type": _TYPE + "ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com", **metadata},
    }


def invalid(message: str) -> Response:
    return google_error(400, message)


def unknown_field(name: str, where: str | None = None) -> Response:
    at = f" at '{where}'" if where else ""
    return invalid(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')


def missing_key() -> Response:
    return google_error(
        403,
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    )


def bad_key() -> Response:
    message = "API key not valid. Please pass a valid API key."
    localized = {"@type": _TYPE + "LocalizedMessage", "locale": "en-US", "message": message}
    return google_error(400, message, [error_info("API_KEY_INVALID"), localized])


def rate_limited(model: str, retry_delay: str | None = "13s") -> Response:
    details: list[JSONObject] = [
        {
            "@type": _TYPE + "QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/"
                    "generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": "10",
                }
            ],
        },
        {
            "@type": _TYPE + "Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
    ]
    if retry_delay is not None:
        details.append({"@type": _TYPE + "RetryInfo", "retryDelay": retry_delay})
    return google_error(
        429,
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
        "* Quota exceeded for metric: generativelanguage.googleapis.com/"
        f"generate_content_free_tier_requests, limit: 10, model: {model}\n"
        "Please retry in 13.2s.",
        details,
    )


def failure(
    code: int, model: str, method: str, key: str, retry_delay: str | None = "13s"
) -> Response:
    """The real API's error for ``code`` (a generic Google error for unusual codes)."""
    if code == 400:
        return invalid("Request contains an invalid argument.")
    if code == 403:
        # Google's text names the consumer, key included: the gateway must not pass it on.
        return google_error(
            403,
            f"Permission denied: Consumer 'api_key:{key}' has been suspended.",
            [error_info("CONSUMER_SUSPENDED", consumer=f"projects/{key}")],
        )
    if code == 404:
        return google_error(
            404,
            f"models/{model} is not found for API version v1beta, or is not supported for "
            f"{method}. Call ListModels to see the list of available models and their supported "
            "methods.",
        )
    if code == 429:
        return rate_limited(model, retry_delay)
    if code == 500:
        return google_error(
            500,
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
        )
    if code == 503:
        return google_error(503, "The model is overloaded. Please try again later.")
    if code == 504:
        return google_error(504, "Deadline expired before operation could complete.")
    return google_error(code, f"Simulated failure {code}.")


def check_generate(body: Mapping[str, Any]) -> Response | None:
    """Google's 400 for a ``generateContent`` body the real API would refuse, else None."""
    for key in body:
        if key not in _TOP_LEVEL:
            return unknown_field(key)
    problem = _check_config(body.get("generationConfig"))
    if problem is None:
        problem = _check_tools(body.get("tools"))
    if problem is None:
        problem = _check_contents(body.get("contents"))
    return problem


def _check_config(config: object) -> Response | None:
    if config is None:
        return None
    if not isinstance(config, Mapping):
        return invalid("Invalid value at 'generation_config': expected an object")
    for key in config:
        if key not in _GENERATION:
            return unknown_field(key, "generation_config")
    if "responseSchema" in config and "responseJsonSchema" in config:
        return invalid("response_schema and response_json_schema cannot both be set.")
    if "responseJsonSchema" in config and config.get("responseMimeType") != "application/json":
        return invalid("response_mime_type must be set when response_json_schema is set.")
    thinking = config.get("thinkingConfig") or {}
    for key in thinking:
        if key not in _THINKING:
            return unknown_field(key, "generation_config.thinking_config")
    if "thinkingBudget" in thinking and "thinkingLevel" in thinking:
        return invalid("You can only set only one of thinking budget and thinking level.")
    return None


def _check_tools(tools: object) -> Response | None:
    for tool in tools if isinstance(tools, list) else []:
        for i, declaration in enumerate(tool.get("functionDeclarations") or []):
            name = declaration.get("name")
            if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
                return invalid(
                    f"* GenerateContentRequest.tools[0].function_declarations[{i}].name: Invalid "
                    "function name. Must start with a letter or an underscore. Must be a-z, A-Z, "
                    "0-9, or contain underscores, dots, colons and dashes, with a maximum length "
                    "of 128.\n"
                )
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                return invalid("parameters and parameters_json_schema cannot both be set.")
    return None


def _check_contents(contents: object) -> Response | None:
    if not isinstance(contents, list) or not contents:
        return invalid("* GenerateContentRequest.contents: contents is not specified\n")
    for i, content in enumerate(contents):
        if content.get("role", "user") not in ("user", "model"):
            return invalid("Please use a valid role: user, model.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return invalid(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
            )
        for j, part in enumerate(parts):
            problem = _check_part(part, f"contents[{i}].parts[{j}]")
            if problem is not None:
                return problem
    return None


def _check_part(part: Mapping[str, Any], where: str) -> Response | None:
    if sum(key in part for key in _PART_DATA) != 1:
        return invalid(
            f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have one "
            "initialized field\n"
        )
    inline = part.get("inlineData")
    if inline is not None:
        try:
            base64.b64decode(inline.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            return invalid(
                f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
            )
        if not inline.get("mimeType"):
            return invalid(f"* GenerateContentRequest.{where}.inline_data.mime_type: required.\n")
    response = part.get("functionResponse")
    if response is not None and (
        not response.get("name") or not isinstance(response.get("response"), Mapping)
    ):
        return invalid(
            f"* GenerateContentRequest.{where}.function_response: name and response are required\n"
        )
    return None


def check_embed(body: Mapping[str, Any], model: str) -> Response | None:
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        return invalid("* BatchEmbedContentsRequest.requests: requests is not specified\n")
    if len(requests) > 100:
        return invalid(
            "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n"
        )
    for i, request in enumerate(requests):
        if request.get("model") != f"models/{model}":
            return invalid(
                f"* BatchEmbedContentsRequest.requests[{i}].model: the model of each request "
                "must be the model of the batch\n"
            )
        parts = (request.get("content") or {}).get("parts")
        if not isinstance(parts, list) or not parts:
            return invalid(
                f"* BatchEmbedContentsRequest.requests[{i}].content: content is not specified\n"
            )
    return None
