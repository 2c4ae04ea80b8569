"""Decoding the OpenAI-compatible requests the local worker serves.

Validation happens here, before a request takes a place in a model's queue, so a malformed body
costs no inference time. Every error names the offending field, the way OpenAI does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from modelyard.core.errors import InvalidRequest
from modelyard.local.fields import (
    get_bool,
    get_float,
    get_int,
    get_str,
    or_default,
    wrong_type,
)

MAX_CHOICES = 8
"""Choices are generated one after another, so ``n`` multiplies the time a request holds a model."""

# Roles the chat template understands, after folding: "developer" is OpenAI's newer name for
# "system", and the legacy "function" role carries a tool result like "tool" does.
_ROLES: Final[Mapping[str, str]] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
# Content part types we recognise but cannot feed to a text-only model, with the capability name.
_MEDIA_PARTS: Final[Mapping[str, str]] = {
    "image_url": "image input",
    "input_image": "image input",
    "input_audio": "audio input",
    "file": "file input",
}


@dataclass(frozen=True)
class Need:
    """A capability the request relies on, and the field that asks for it."""

    capability: str
    param: str


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class ResponseFormat:
    kind: Literal["text", "json_object", "json_schema"] = "text"
    schema: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Sampling:
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    # llama.cpp extensions a client may send. 1.1 is what llama-cpp-python's own OpenAI-compatible
    # server defaults to: small models fall into loops without it (SmolLM2, greedy, answers the
    # capital of France with a list of French words at 1.0, and with "Paris" at 1.1).
    repeat_penalty: float = 1.1
    top_k: int = 40
    min_p: float = 0.05


@dataclass(frozen=True)
class ChatParams:
    model: str
    messages: tuple[ChatMessage, ...]
    sampling: Sampling
    n: int = 1
    response_format: ResponseFormat = ResponseFormat()
    stream: bool = False
    include_usage: bool = False
    needs: tuple[Need, ...] = ()


@dataclass(frozen=True)
class EmbeddingParams:
    model: str
    inputs: tuple[str | tuple[int, ...], ...]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


def _content(value: object, param: str, needs: list[Need]) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise wrong_type(param, "a string or a list of content parts", value)
    texts: list[str] = []
    for index, part in enumerate(value):
        where = f"{param}[{index}]"
        if not isinstance(part, dict):
            raise wrong_type(where, "a content part object", part)
        kind = part.get("type")
        if kind in ("text", "input_text", "refusal"):
            texts.append(get_str(part, "refusal" if kind == "refusal" else "text", param=where))
        elif isinstance(kind, str) and kind in _MEDIA_PARTS:
            needs.append(Need(_MEDIA_PARTS[kind], where))
        else:
            raise InvalidRequest(f"{where}.type: unknown content part type {kind!r}", param=where)
    return "\n".join(texts)


def _messages(body: Mapping[str, Any], needs: list[Need]) -> tuple[ChatMessage, ...]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise wrong_type("messages", "a non-empty list of messages", raw)
    messages: list[ChatMessage] = []
    for index, item in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(item, dict):
            raise wrong_type(where, "a message object", item)
        role = item.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            known = ", ".join(sorted(_ROLES))
            raise InvalidRequest(
                f"{where}.role: unknown role {role!r}; known: {known}", param=where
            )
        if item.get("tool_calls") or item.get("function_call"):
            needs.append(Need("tools", f"{where}.tool_calls"))
        content = _content(item.get("content"), f"{where}.content", needs)
        messages.append(ChatMessage(_ROLES[role], content))
    return tuple(messages)


def _stop(body: Mapping[str, Any]) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    raise wrong_type("stop", "a string or a list of non-empty strings", value)


def _response_format(body: Mapping[str, Any]) -> ResponseFormat:
    value = body.get("response_format")
    if value is None:
        return ResponseFormat()
    if not isinstance(value, dict):
        raise wrong_type("response_format", "an object", value)
    kind = value.get("type")
    if kind == "text":
        return ResponseFormat()
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind != "json_schema":
        raise InvalidRequest(
            f"response_format.type: expected 'text', 'json_object' or 'json_schema', got {kind!r}",
            param="response_format.type",
        )
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise wrong_type("response_format.json_schema", "an object", spec)
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise wrong_type("response_format.json_schema.schema", "an object", schema)
    return ResponseFormat("json_schema", schema)


def _sampling(body: Mapping[str, Any]) -> Sampling:
    defaults = Sampling()
    max_tokens = get_int(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = get_int(body, "max_tokens", 1)
    seed = get_int(body, "seed", -(2**63))
    return Sampling(
        max_tokens=max_tokens,
        temperature=or_default(get_float(body, "temperature", 0.0, 2.0), defaults.temperature),
        top_p=or_default(get_float(body, "top_p", 0.0, 1.0), defaults.top_p),
        stop=_stop(body),
        # llama.cpp seeds are unsigned 32-bit; fold any JSON integer into that range.
        seed=None if seed is None else seed % 2**32,
        frequency_penalty=or_default(get_float(body, "frequency_penalty", -2.0, 2.0), 0.0),
        presence_penalty=or_default(get_float(body, "presence_penalty", -2.0, 2.0), 0.0),
        repeat_penalty=or_default(
            get_float(body, "repeat_penalty", 0.0, 10.0), defaults.repeat_penalty
        ),
        top_k=or_default(get_int(body, "top_k", 0), defaults.top_k),
        min_p=or_default(get_float(body, "min_p", 0.0, 1.0), defaults.min_p),
    )


def _tool_needs(body: Mapping[str, Any]) -> list[Need]:
    needs: list[Need] = []
    for key in ("tools", "functions"):
        value = body.get(key)
        if value is not None and not isinstance(value, list):
            raise wrong_type(key, "a list", value)
        if value:
            needs.append(Need("tools", key))
    if body.get("logprobs") is True:
        needs.append(Need("logprobs", "logprobs"))
    if body.get("logit_bias"):
        needs.append(Need("logit_bias", "logit_bias"))
    return needs


def parse_chat(body: Mapping[str, Any]) -> ChatParams:
    """Decode and validate a Chat Completions request body."""
    model = get_str(body, "model")
    needs = _tool_needs(body)
    messages = _messages(body, needs)
    stream = get_bool(body, "stream", False)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise wrong_type("stream_options", "an object", options)
    if options is not None and not stream:
        raise InvalidRequest(
            "stream_options: only allowed when stream is true", param="stream_options"
        )
    include_usage = get_bool(
        options or {}, "include_usage", False, param="stream_options.include_usage"
    )
    return ChatParams(
        model=model,
        messages=messages,
        sampling=_sampling(body),
        n=or_default(get_int(body, "n", 1, MAX_CHOICES), 1),
        response_format=_response_format(body),
        stream=stream,
        include_usage=include_usage,
        needs=tuple(needs),
    )


def _embedding_inputs(value: object) -> tuple[str | tuple[int, ...], ...]:
    if isinstance(value, str) or (
        isinstance(value, list) and value and all(_is_token(item) for item in value)
    ):
        value = [value]
    if not isinstance(value, list) or not value:
        raise wrong_type("input", "a string, a list of strings or a list of token arrays", value)
    inputs: list[str | tuple[int, ...]] = []
    for index, item in enumerate(value):
        if isinstance(item, str) and item:
            inputs.append(item)
        elif isinstance(item, list) and item and all(_is_token(token) for token in item):
            inputs.append(tuple(item))
        else:
            where = f"input[{index}]"
            raise wrong_type(where, "a non-empty string or a non-empty token array", item)
    return tuple(inputs)


def _is_token(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_embeddings(body: Mapping[str, Any]) -> EmbeddingParams:
    """Decode and validate an Embeddings request body."""
    model = get_str(body, "model")
    inputs = _embedding_inputs(body.get("input"))
    encoding = body.get("encoding_format", "float")
    if encoding is None:
        encoding = "float"
    if encoding not in ("float", "base64"):
        raise InvalidRequest(
            f"encoding_format: expected 'float' or 'base64', got {encoding!r}",
            param="encoding_format",
        )
    return EmbeddingParams(model, inputs, encoding, get_int(body, "dimensions", 1))
