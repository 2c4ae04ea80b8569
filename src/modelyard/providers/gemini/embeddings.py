"""Gemini ``batchEmbedContents`` bodies and responses.

Gemini embeds text only (token-id arrays are refused), takes at most 100 requests per batch (so
larger inputs are split into several calls) and reports no token usage for embeddings, so the
result's usage is None rather than a guess. ``dimensions`` → ``outputDimensionality``; the
Gemini-specific extra field ``task_type`` (e.g. ``RETRIEVAL_QUERY``) → ``taskType``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelyard.core.embeddings import EmbeddingRequest
from modelyard.core.errors import InvalidRequest, UpstreamError
from modelyard.providers.base import encode_body

MAX_BATCH = 100


def embedding_bodies(request: EmbeddingRequest, model_path: str) -> list[tuple[int, bytes]]:
    """``(number of inputs, body)`` for each ``batchEmbedContents`` call ``request`` needs."""
    texts = _texts(request)
    template: dict[str, Any] = {"model": model_path}
    if request.dimensions is not None:
        template["outputDimensionality"] = request.dimensions
    for key, value in request.extra.items():
        if value is None or value is False:
            continue
        if key != "task_type" or not isinstance(value, str):
            raise InvalidRequest(
                f"{key!r} is not supported by Gemini embeddings",
                param=key,
                code="unsupported_parameter",
            )
        template["taskType"] = value.upper()
    bodies: list[tuple[int, bytes]] = []
    for start in range(0, len(texts), MAX_BATCH):
        chunk = texts[start : start + MAX_BATCH]
        requests = [{**template, "content": {"parts": [{"text": text}]}} for text in chunk]
        bodies.append((len(chunk), encode_body({"requests": requests})))
    return bodies


def _texts(request: EmbeddingRequest) -> list[str]:
    texts: list[str] = []
    for i, item in enumerate(request.inputs):
        if not isinstance(item, str):
            raise InvalidRequest(
                "Gemini embeds text only; token-id arrays are not supported", param=f"input[{i}]"
            )
        texts.append(item)
    return texts


def parse_embeddings(data: Mapping[str, Any], expected: int, label: str) -> list[list[float]]:
    try:
        vectors = [[float(x) for x in row["values"]] for row in data["embeddings"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise UpstreamError(f"{label}: the upstream sent malformed embeddings") from exc
    if len(vectors) != expected:
        raise UpstreamError(
            f"{label}: the upstream sent {len(vectors)} embeddings for {expected} inputs"
        )
    return vectors
