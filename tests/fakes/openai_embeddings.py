"""Embeddings and model listings of the fake OpenAI upstream.

Vectors are deterministic: the first ``dimensions`` numbers (8 by default) drawn from SHA-256
of the input, L2-normalised like OpenAI's. Because the numbers are drawn in order, a shorter
``dimensions`` gives the renormalised prefix of a longer vector, as the text-embedding-3 models
do. Values are rounded to float32 so that the ``float`` and ``base64`` encodings (little-endian
float32, as OpenAI sends) decode to the same numbers.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import Response

from .openai_wire import JSONObject, count_tokens, invalid_value, missing_parameter

DEFAULT_DIMENSIONS = 8
DEFAULT_MODELS = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "o3-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
)
# A fixed creation time keeps model listings byte-for-byte reproducible.
MODEL_CREATED = 1_715_367_049
_MAX_DIMENSIONS = 4096
_MAX_INPUTS = 2048


def validate_embeddings_request(body: Mapping[str, Any]) -> Response | None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return missing_parameter("model")
    if "input" not in body:
        return missing_parameter("input")
    if _inputs(body["input"]) is None:
        return invalid_value(
            "input",
            "expected a non-empty string, array of strings, array of tokens or array of token "
            "arrays.",
            "invalid_type",
        )
    encoding = body.get("encoding_format")
    if encoding not in (None, "float", "base64"):
        return invalid_value(
            "encoding_format", f"expected one of 'float' or 'base64', but got {encoding!r}."
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        not isinstance(dimensions, int)
        or isinstance(dimensions, bool)
        or not 1 <= dimensions <= _MAX_DIMENSIONS
    ):
        return invalid_value(
            "dimensions", f"expected an integer between 1 and {_MAX_DIMENSIONS}, got {dimensions}."
        )
    return None


def embeddings_body(body: Mapping[str, Any]) -> JSONObject:
    """The response for a request that ``validate_embeddings_request`` accepted."""
    inputs = _inputs(body["input"]) or []
    dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data: list[JSONObject] = []
    tokens = 0
    for index, item in enumerate(inputs):
        key, item_tokens = _key_and_tokens(item)
        tokens += item_tokens
        vector = embed(key, dimensions)
        encoded: object = _to_base64(vector) if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def embed(key: bytes, dimensions: int) -> list[float]:
    """The deterministic unit vector of ``key``, float32-exact."""
    raw: list[float] = []
    block = 0
    while len(raw) < dimensions:
        digest = hashlib.sha256(key + block.to_bytes(4, "little")).digest()
        for offset in range(0, len(digest), 4):
            word = int.from_bytes(digest[offset : offset + 4], "little")
            raw.append(word / 2**31 - 1.0)
        block += 1
    raw = raw[:dimensions]
    norm = math.sqrt(sum(value * value for value in raw)) or 1.0
    packed = struct.pack(f"<{dimensions}f", *(value / norm for value in raw))
    return list(struct.unpack(f"<{dimensions}f", packed))


def model_object(model_id: str) -> JSONObject:
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": "system"}


def models_body(models: Sequence[str]) -> JSONObject:
    return {"object": "list", "data": [model_object(model_id) for model_id in models]}


def _inputs(value: object) -> list[str | list[int]] | None:
    """Normalise the four accepted ``input`` shapes to a list of items, or None if invalid."""
    if isinstance(value, str):
        return [value] if value else None
    if not isinstance(value, list) or not value or len(value) > _MAX_INPUTS:
        return None
    if all(isinstance(item, str) and item for item in value):
        return list(value)
    if all(_is_token(item) for item in value):
        return [list(value)]
    if all(isinstance(item, list) and item and all(map(_is_token, item)) for item in value):
        return [list(item) for item in value]
    return None


def _is_token(item: object) -> bool:
    return isinstance(item, int) and not isinstance(item, bool) and item >= 0


def _key_and_tokens(item: str | list[int]) -> tuple[bytes, int]:
    if isinstance(item, str):
        return item.encode(), max(1, count_tokens(item))
    return b"tokens:" + ",".join(map(str, item)).encode(), len(item)


def _to_base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
