"""Reading typed fields out of a decoded JSON request, with errors that name the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import orjson

from modelyard.core.errors import InvalidRequest

_T = TypeVar("_T")


def decode_body(raw: bytes) -> dict[str, Any]:
    """Parse a request body that must be one JSON object."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def kind_of(value: object) -> str:
    return "null" if value is None else type(value).__name__


def wrong_type(param: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(f"{param}: expected {expected}, got {kind_of(value)}", param=param)


def get_str(body: Mapping[str, Any], key: str, *, param: str | None = None) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise wrong_type(param or key, "a non-empty string", value)
    return value


def get_bool(body: Mapping[str, Any], key: str, default: bool, *, param: str | None = None) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise wrong_type(param or key, "a boolean", value)
    return value


def get_int(body: Mapping[str, Any], key: str, low: int, high: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    # bool is an int in Python but not in JSON Schema terms.
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(key, "an integer", value)
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise InvalidRequest(f"{key}: must be {bounds}, got {value}", param=key)
    return value


def get_float(body: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(key, "a number", value)
    if not low <= value <= high:
        raise InvalidRequest(f"{key}: must be between {low:g} and {high:g}, got {value}", param=key)
    return float(value)


def or_default(value: _T | None, default: _T) -> _T:
    return default if value is None else value
