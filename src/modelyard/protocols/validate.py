"""Small typed field readers for decoding JSON bodies; each error names the offending field.

Shared by every served dialect so that a wrong type produces the same kind of message anywhere.
"""

from __future__ import annotations

from typing import Any

from modelyard.core.errors import InvalidRequest

_TYPE_NAMES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    dict: "an object",
    list: "an array",
}


def bad(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param, code="invalid_value")


def as_str(value: Any, param: str) -> str:
    """``value`` (not null) when it is a string, else a 400 naming ``param``."""
    if not isinstance(value, str):
        raise bad(param, f"must be a string, got {_json_type(value)}")
    return value


def as_bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise bad(param, f"must be a boolean, got {_json_type(value)}")
    return value


def as_int(value: Any, param: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(param, f"must be an integer, got {_json_type(value)}")
    _check_range(value, param, minimum, maximum)
    return value


def as_number(
    value: Any, param: str, minimum: float | None = None, maximum: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(param, f"must be a number, got {_json_type(value)}")
    _check_range(value, param, minimum, maximum)
    return float(value)


def as_dict(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(param, f"must be an object, got {_json_type(value)}")
    return value


def as_list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad(param, f"must be an array, got {_json_type(value)}")
    return value


def get_str(obj: dict[str, Any], key: str, param: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise bad(param, "is required")
        return None
    return as_str(value, param)


def get_bool(obj: dict[str, Any], key: str, param: str) -> bool | None:
    value = obj.get(key)
    return None if value is None else as_bool(value, param)


def get_int(
    obj: dict[str, Any],
    key: str,
    param: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    value = obj.get(key)
    return None if value is None else as_int(value, param, minimum, maximum)


def get_number(
    obj: dict[str, Any],
    key: str,
    param: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float | None:
    value = obj.get(key)
    return None if value is None else as_number(value, param, minimum, maximum)


def get_dict(
    obj: dict[str, Any], key: str, param: str, *, required: bool = False
) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise bad(param, "is required")
        return None
    return as_dict(value, param)


def get_list(
    obj: dict[str, Any], key: str, param: str, *, required: bool = False
) -> list[Any] | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise bad(param, "is required")
        return None
    return as_list(value, param)


def require_dict(value: Any, param: str) -> dict[str, Any]:
    return as_dict(value, param)


def _check_range(value: float, param: str, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise bad(param, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise bad(param, f"must be at most {maximum}, got {value}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return _TYPE_NAMES.get(type(value), type(value).__name__)
