"""Encoding the worker's responses in the OpenAI wire format: bodies, stream frames, errors."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from modelyard.core.errors import ModelyardError

DONE_FRAME = b"data: [DONE]\n\n"

# OpenAI's error "type" for each kind in the core error tree.
_ERROR_TYPES: Final[Mapping[str, str]] = {
    "invalid_request": "invalid_request_error",
    "not_found": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "rate_limit": "rate_limit_error",
    "timeout": "timeout_error",
}


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def to_json(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass(frozen=True)
class Choice:
    text: str
    finish_reason: str


def error_body(error: ModelyardError) -> bytes:
    """The OpenAI error envelope for ``error``."""
    return orjson.dumps({"error": error_json(error)})


def error_json(error: ModelyardError) -> dict[str, Any]:
    return {
        "message": error.message,
        "type": _ERROR_TYPES.get(error.kind, "server_error"),
        "param": error.param,
        "code": error.code,
    }


class CompletionIds:
    """The id, timestamp and model name shared by every object of one chat completion."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def completion(self, choices: Sequence[Choice], usage: Usage) -> bytes:
        """A whole ``chat.completion`` object."""
        return orjson.dumps(
            {
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "choices": [
                    {
                        "index": index,
                        "message": {"role": "assistant", "content": choice.text},
                        "finish_reason": choice.finish_reason,
                        "logprobs": None,
                    }
                    for index, choice in enumerate(choices)
                ],
                "usage": usage.to_json(),
            }
        )

    def chunk(
        self,
        index: int,
        delta: dict[str, str],
        finish_reason: str | None = None,
        *,
        with_usage_field: bool = False,
    ) -> bytes:
        """One SSE frame carrying a ``chat.completion.chunk`` for choice ``index``."""
        payload: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ],
        }
        if with_usage_field:
            # With include_usage, OpenAI sends "usage": null on every chunk but the last.
            payload["usage"] = None
        return frame(payload)

    def usage_chunk(self, usage: Usage) -> bytes:
        """The final frame of a stream with ``include_usage``: no choices, just usage."""
        return frame(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage.to_json(),
            }
        )


def frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def error_frame(error: ModelyardError) -> bytes:
    """An error that happens after a stream began travels as a frame, as OpenAI does."""
    return frame({"error": error_json(error)})


def embeddings_body(
    model: str, vectors: Sequence[Sequence[float]], prompt_tokens: int, encoding: str
) -> bytes:
    data = [
        {"object": "embedding", "index": index, "embedding": _encode_vector(vector, encoding)}
        for index, vector in enumerate(vectors)
    ]
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )


def _encode_vector(vector: Sequence[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        # OpenAI's base64 form is the little-endian float32 array.
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return list(vector)
