"""Small typed field readers for decoding JSON bodies; each error names the offending field.

Shared by every served dialect so that a wrong type produces the same kind of message anywhere.

The elements of a long list (a request's ``messages``) are read with field paths relative to
the element (``content``, ``tool_calls[0].id``), and ``each`` makes the path whole
(``messages[3].content``) only when an element is refused: a valid request builds no path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from modelyard.core.errors import InvalidRequest

T = TypeVar("T")

_TYPE_NAMES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    dict: "an object",
    list: "an array",
}


def bad(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param, code="invalid_value")


def each(items: list[Any], name: str, read: Callable[[Any], T]) -> list[T]:
    """``read`` applied to each element of the list field ``name``. ``read`` names fields
    relative to the element (``""`` for the element itself); an error is raised again with the
    whole path, ``name[i]`` and the relative one joined, so that the path costs nothing until
    something is wrong."""
    out: list[T] = []
    for i, item in enumerate(items):
        try:
            out.append(read(item))
        except InvalidRequest as exc:
            raise nested(f"{name}[{i}]", exc) from None
    return out


def nested(prefix: str, exc: InvalidRequest) -> InvalidRequest:
    """``exc``, an error of ``bad`` naming a field relative to ``prefix``, naming it whole."""
    param = exc.param
    if param is None or not exc.message.startswith(param):  # not a field error of ``bad``
        return exc
    if not param:
        whole = prefix
    elif param.startswith("["):
        whole = prefix + param
    else:
        whole = f"{prefix}.{param}"
    return InvalidRequest(whole + exc.message[len(param) :], param=whole, code=exc.code)


def as_str(value: Any, param: str) -> str:
    """``value`` (not null) when it is a string, else a 400 naming ``param``."""
    if not isinstance(value, str):
        raise _wrong_type(param, "a string", value)
    return value


def as_bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(param, "a boolean", value)
    return value


def as_int(value: Any, param: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(param, "an integer", value)
    _check_range(value, param, minimum, maximum)
    return value


def as_number(
    value: Any, param: str, minimum: float | None = None, maximum: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(param, "a number", value)
    _check_range(value, param, minimum, maximum)
    return float(value)


def as_dict(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong_type(param, "an object", value)
    return value


def as_list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise _wrong_type(param, "an array", value)
    return value


def get_str(obj: dict[str, Any], key: str, param: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise bad(param, "is required")
        return None
    if not isinstance(value, str):
        raise _wrong_type(param, "a string", value)
    return value


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
    if not isinstance(value, dict):
        raise _wrong_type(param, "an object", value)
    return value


def get_list(
    obj: dict[str, Any], key: str, param: str, *, required: bool = False
) -> list[Any] | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise bad(param, "is required")
        return None
    if not isinstance(value, list):
        raise _wrong_type(param, "an array", value)
    return value


# The same check, under the name that reads better where a value must be an object to go on.
require_dict = as_dict


def _check_range(value: float, param: str, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise bad(param, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise bad(param, f"must be at most {maximum}, got {value}")


def _wrong_type(param: str, expected: str, value: Any) -> InvalidRequest:
    return bad(param, f"must be {expected}, got {_json_type(value)}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return _TYPE_NAMES.get(type(value), type(value).__name__)
