"""Embeddings through InvokeModel, whose bodies are specific to each model family.

Only Amazon Titan Text Embeddings is implemented: one call per input, ``{"inputText"}`` in,
``{"embedding", "inputTextTokenCount"}`` out. V2 (``amazon.titan-embed-text-v2:0``) takes
``dimensions`` (256, 512 or 1024) and ``normalize``; V1 takes the text alone. Other families
(Cohere, Titan multimodal...) answer ``UnsupportedCapability``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from modelyard.core.chat import Usage
from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.core.errors import InvalidRequest, UnsupportedCapability, UpstreamError
from modelyard.providers.base import encode_body

TitanVersion = Literal["v1", "v2"]
V2_DIMENSIONS = (256, 512, 1024)
# Extra fields the Titan body accepts as they are (V2 only).
_V2_EXTRAS = frozenset({"normalize", "embeddingTypes"})


@dataclass(frozen=True, slots=True)
class TitanCall:
    body: bytes


def titan_version(model: str) -> TitanVersion:
    """Which Titan text-embedding body ``model`` takes (ids, ARNs and profiles alike)."""
    if "titan-embed-text-v2" in model:
        return "v2"
    if "titan-embed-text-v1" in model or "titan-embed-g1-text" in model:
        return "v1"
    raise UnsupportedCapability(
        "embeddings through this adapter (only Amazon Titan Text Embeddings are implemented)",
        model,
        param="model",
    )


def titan_calls(request: EmbeddingRequest, model: str) -> list[TitanCall]:
    version = titan_version(model)
    if not all(isinstance(item, str) for item in request.inputs):
        raise UnsupportedCapability("token-array inputs (send text)", model, param="input")
    base = _base_fields(request, model, version)
    return [
        TitanCall(encode_body({"inputText": text, **base}))
        for text in request.inputs
        if isinstance(text, str)
    ]


def _base_fields(request: EmbeddingRequest, model: str, version: TitanVersion) -> dict[str, Any]:
    unknown = sorted(set(request.extra) - (_V2_EXTRAS if version == "v2" else set()))
    if unknown:
        raise InvalidRequest(
            f"{unknown[0]}: model {model!r} does not accept this parameter", param=unknown[0]
        )
    fields: dict[str, Any] = dict(request.extra)
    if request.dimensions is None:
        return fields
    if version == "v1" or request.dimensions not in V2_DIMENSIONS:
        accepted = "none" if version == "v1" else ", ".join(map(str, V2_DIMENSIONS))
        raise InvalidRequest(
            f"dimensions: model {model!r} accepts {accepted}; got {request.dimensions}",
            param="dimensions",
        )
    fields["dimensions"] = request.dimensions
    return fields


def parse_titan(body: bytes, label: str) -> tuple[list[float], int]:
    """The vector and its token count from one InvokeModel answer."""
    try:
        data = orjson.loads(body)
        vector = [float(x) for x in data["embedding"]]
        tokens = int(data.get("inputTextTokenCount") or 0)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UpstreamError(f"{label}: the upstream sent a malformed embedding") from exc
    return vector, tokens


def combine(parts: list[tuple[list[float], int]], model: str) -> EmbeddingResult:
    return EmbeddingResult(
        vectors=[vector for vector, _ in parts],
        usage=Usage(input_tokens=sum(tokens for _, tokens in parts)),
        upstream_model=model,
    )
