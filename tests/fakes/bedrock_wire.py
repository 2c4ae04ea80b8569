"""Wire-level pieces of the fake Bedrock: error responses, faults and Titan embeddings.

Errors are ``{"message": ...}`` bodies with the exception named in ``x-amzn-ErrorType``
(``Name:namespace``), at the statuses the service model gives each exception. Faults are chosen
by the model id, as in the fake OpenAI: ``fail-NNN`` answers that status with its exception,
``slow-N`` waits N ms first, ``hang`` never answers.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from .openai_faults import split_retry_after

ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
# status → (exception, message), modelled on the texts the service sends.
FAILURES: dict[int, tuple[str, str]] = {
    400: (
        "ValidationException",
        "Malformed input request: #/temperature: 3.0 is not less or equal to 1.0, please "
        "reformat your input and try again.",
    ),
    403: (
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    404: (
        "ResourceNotFoundException",
        "Could not resolve the foundation model from the provided model identifier.",
    ),
    408: (
        "ModelTimeoutException",
        "Model has timed out in processing the request. Try your request again.",
    ),
    424: ("ModelErrorException", "The model encountered an error processing the request."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: (
        "InternalServerException",
        "The system encountered an unexpected error during processing. Try your request again.",
    ),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}
_FAULT = re.compile(r"(?P<name>fail|slow)-(?P<amount>\d+)")
PLAIN_FAULTS = frozenset({"hang", "drop-mid-stream", "exception-mid-stream", "truncated-stream"})
TITAN_V1_DIMENSIONS = 1536
TITAN_V2_DIMENSIONS = (256, 512, 1024)


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    amount: int = 0


def parse_fault(model: str) -> Fault | None:
    model = split_retry_after(model)[0]
    if model in PLAIN_FAULTS:
        return Fault(model)
    match = _FAULT.fullmatch(model)
    if match is None:
        return None
    return Fault(match["name"], int(match["amount"]))


def error_response(status: int, error: str, message: str, request_id: str) -> Response:
    headers = {"x-amzn-ErrorType": f"{error}:{ERROR_NAMESPACE}", "x-amzn-RequestId": request_id}
    return Response(
        orjson.dumps({"message": message}),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def failure(status: int, request_id: str) -> Response:
    error, message = FAILURES.get(
        status, ("InternalServerException", f"Simulated failure {status}.")
    )
    return error_response(status, error, message, request_id)


def json_response(body: Any, request_id: str) -> Response:
    return Response(
        orjson.dumps(body), headers={"x-amzn-RequestId": request_id}, media_type="application/json"
    )


class InvalidEmbedding(Exception):
    pass


def titan_embedding(model: str, body: Any) -> dict[str, Any]:
    """InvokeModel for Titan Text Embeddings V1/V2; raises ``InvalidEmbedding`` as Bedrock would."""
    if not isinstance(body, dict) or not isinstance(body.get("inputText"), str):
        raise InvalidEmbedding("Malformed input request: #: required key [inputText] not found")
    v2 = "titan-embed-text-v2" in model
    allowed = {"inputText", "dimensions", "normalize", "embeddingTypes"} if v2 else {"inputText"}
    extra = sorted(set(body) - allowed)
    if extra:
        raise InvalidEmbedding(
            f"Malformed input request: extraneous key [{extra[0]}] is not permitted"
        )
    dimensions = body.get("dimensions", 1024) if v2 else TITAN_V1_DIMENSIONS
    if v2 and dimensions not in TITAN_V2_DIMENSIONS:
        raise InvalidEmbedding(
            f"Malformed input request: #/dimensions: {dimensions} is not a valid enum value"
        )
    vector = _vector(body["inputText"], dimensions, normalize=body.get("normalize", True) is True)
    out: dict[str, Any] = {
        "embedding": vector,
        "inputTextTokenCount": len(body["inputText"].split()),
    }
    if v2:
        out["embeddingsByType"] = {"float": vector}
    return out


def _vector(text: str, dimensions: int, *, normalize: bool) -> list[float]:
    """A deterministic vector per text, so tests can tell inputs apart and check their order."""
    raw = b""
    counter = 0
    while len(raw) < 4 * dimensions:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    values = [
        (n % 2001 - 1000) / 1000 for n in struct.unpack(f">{dimensions}I", raw[: 4 * dimensions])
    ]
    if not normalize:
        return values
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
