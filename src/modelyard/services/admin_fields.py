"""The checked field types of the admin API's inputs, and its one translation of pydantic's
errors into ours.

Each type is a pydantic ``Annotated`` type: the check (with a message that says what would be
accepted) and the JSON schema the OpenAPI document shows for it sit side by side here, built
from the same constants. Money arrives in dollars, as a decimal string or a JSON number, and
becomes integer micro-dollars exactly: more than six decimal places is refused, not rounded.
Nothing here touches HTTP or the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final, TypeVar

from annotated_types import Len
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from modelyard.core.errors import InvalidRequest
from modelyard.core.money import dollars_to_micros

M = TypeVar("M", bound=BaseModel)
MAX_RATE = 10**9
MAX_DOLLARS = 10**9
MAX_EXPIRY = timedelta(days=3650)
MAX_LOOKBACK = timedelta(days=36500)
MAX_DEPLOYMENTS = 1000
PROJECT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KEY_ID = re.compile(r"^[a-z0-9]{12}$")
# Deployment names travel comma-separated in the store, so a comma can never be part of one.
DEPLOYMENT = re.compile(r"^[^,\x00-\x1f\x7f]{1,128}$")
DURATION = re.compile(r"^[0-9]{1,7}[smhdw]$")
_TEXT = re.compile(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")
_DOLLARS = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,6})?$")
_MICRO = Decimal("0.000001")
_UNITS: Final[Mapping[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def json_type(value: Any) -> str:
    """How a JSON value's type reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _refuse(message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError("invalid_value", message, context)


def _matching(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise _refuse("{value} is not {what}", value=repr(value[:80]), what=what)
        return value

    return AfterValidator(check)


def _schema(**schema: Any) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", **schema})


_STRICT = StringConstraints(strict=True)
ProjectId = Annotated[
    str,
    _STRICT,
    _matching(
        PROJECT_ID,
        "a project id: use 1-64 lowercase letters, digits, _ or -, starting with a letter or digit",
    ),
    _schema(pattern=PROJECT_ID.pattern),
]
KeyId = Annotated[
    str,
    _STRICT,
    _matching(KEY_ID, "a key id: 12 lowercase letters or digits"),
    _schema(pattern=KEY_ID.pattern),
]
DeploymentName = Annotated[
    str,
    _STRICT,
    _matching(DEPLOYMENT, "a deployment name (1-128 characters, no commas)"),
    _schema(pattern=DEPLOYMENT.pattern),
]


def _text(max_len: int) -> tuple[Any, ...]:
    return (
        StringConstraints(strict=True, max_length=max_len),
        _matching(_TEXT, "text without control characters"),
        _schema(maxLength=max_len, pattern=_TEXT.pattern),
    )


Description = Annotated[str, *_text(2000)]
KeyName = Annotated[str, *_text(128)]


def _rate_schema(what: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "description": f"{what} per minute; null: no limit.",
            "anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_RATE}, {"type": "null"}],
        }
    )


def _rate(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse("must be an integer or null, got {got}", got=json_type(value))
    if not 1 <= value <= MAX_RATE:
        raise _refuse("must be between 1 and {high}, got {value}", high=MAX_RATE, value=value)
    return value


def _dollars(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _refuse("must be a decimal string, a number or null, got {got}", got=json_type(value))
    # A JSON number is read back as the shortest decimal that round-trips, i.e. what was sent.
    written = value if isinstance(value, str) else repr(value)
    shown = repr(written[:40])
    if isinstance(value, str) and not _DOLLARS.fullmatch(written):
        raise _refuse("{shown}: write dollars as digits with up to 6 decimals", shown=shown)
    try:
        amount = Decimal(written)
    except InvalidOperation as exc:
        raise _refuse("{shown} is not a dollar amount", shown=shown) from exc
    if not amount.is_finite() or not 0 <= amount <= MAX_DOLLARS:
        raise _refuse(
            "must be between 0 and {high} dollars, got {shown}", high=MAX_DOLLARS, shown=shown
        )
    if amount != amount.quantize(_MICRO):
        raise _refuse("has more than 6 decimal places (the unit is a micro-dollar)")
    return dollars_to_micros(amount)


def _dollars_schema(period: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "description": f"{period} budget in US dollars, exact to a micro-dollar; null: none.",
            "anyOf": [
                {"type": "string", "pattern": _DOLLARS.pattern},
                {"type": "number", "minimum": 0, "maximum": MAX_DOLLARS},
                {"type": "null"},
            ],
        }
    )


# Validated, the budgets are integer micro-dollars.
RequestsPerMinute = Annotated[int | None, BeforeValidator(_rate), _rate_schema("Requests")]
TokensPerMinute = Annotated[int | None, BeforeValidator(_rate), _rate_schema("Tokens")]
DailyBudget = Annotated[int | None, BeforeValidator(_dollars), _dollars_schema("Daily (UTC day)")]
MonthlyBudget = Annotated[
    int | None, BeforeValidator(_dollars), _dollars_schema("Monthly (UTC month)")
]


def parse_duration(value: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` (checked against ``DURATION`` first)."""
    return timedelta(seconds=int(value[:-1]) * _UNITS[value[-1]])


def duration_within(value: Any, maximum: timedelta) -> timedelta:
    """A duration string: more than zero and at most ``maximum``."""
    if not isinstance(value, str):
        raise _refuse('must be a duration string like "30d", got {got}', got=json_type(value))
    if not DURATION.fullmatch(value):
        raise _refuse(
            "{shown} is not a duration; use a number and s, m, h, d or w",
            shown=repr(value[:40]),
        )
    span = parse_duration(value)
    if span <= timedelta(0) or span > maximum:
        raise _refuse(
            "must be more than 0s and at most {days}d, got {value}",
            days=maximum.days,
            value=value,
        )
    return span


Expiry = Annotated[
    timedelta,
    BeforeValidator(lambda value: duration_within(value, MAX_EXPIRY)),
    _schema(pattern=DURATION.pattern, description="e.g. 30d, 12h, 2w; at most 3650d"),
]


def _moment(value: Any, info: ValidationInfo) -> datetime:
    """An ISO 8601 date or time (UTC without an offset), or a duration back from ``now``."""
    now: datetime = (info.context or {}).get("now") or datetime.now(UTC)
    if not isinstance(value, str):
        raise _refuse("must be a string, got {got}", got=json_type(value))
    value = value.strip()
    if DURATION.fullmatch(value):
        return now - duration_within(value, MAX_LOOKBACK)
    try:
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _refuse(
            "{shown}: use an ISO 8601 date or time (2025-01-31T00:00Z) or 7d",
            shown=repr(value[:40]),
        ) from exc


Since = Annotated[
    datetime, BeforeValidator(_moment), _schema(description="ISO 8601, or a duration back (7d)")
]
Until = Annotated[
    datetime,
    BeforeValidator(_moment),
    _schema(description="ISO 8601 (exclusive), or a duration back"),
]


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


Deployments = Annotated[
    list[DeploymentName],
    Len(1, MAX_DEPLOYMENTS),
    AfterValidator(_unique),
]


_DIGITS = re.compile(r"^[0-9]{1,9}$")  # ASCII only: superscripts and other scripts' digits are not


def _whole_number(value: Any) -> Any:
    """A query parameter's count: plain ASCII digits (no sign, space, "_", decimals)."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise _refuse("{shown} is not a whole number: write digits 0-9", shown=repr(value[:40]))
    return value


Count = Annotated[int, BeforeValidator(_whole_number)]


# --- pydantic's errors as ours ------------------------------------------------------------


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("limits", "rpm")`` -> ``limits.rpm``; ``("deployments", 0)`` -> ``deployments[0]``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


def invalid_input(exc: ValidationError, model: type[BaseModel], where: str) -> InvalidRequest:
    """The first of pydantic's errors as a 400 naming the field (``where``: body or query)."""
    errors = exc.errors(include_url=False)
    # An unknown field says the most about a mistake (a typo); report it before the rest.
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    path = field_path(error["loc"]) or where
    if error["type"] == "extra_forbidden":
        accepted = ", ".join(model.model_fields) or "none"
        noun = "field" if where == "body" else "query parameter"
        return InvalidRequest(
            f"unknown {noun} {path[:40]!r}; accepted: {accepted}",
            param=path[:40],
            code="unknown_field" if where == "body" else "unknown_parameter",
        )
    message = _message(error["type"], error["msg"], error.get("input"), where)
    return InvalidRequest(f"{path}: {message}", param=path, code="invalid_value")


def _message(kind: str, text: str, given: Any, where: str) -> str:
    if kind == "missing":
        return "is required"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a JSON object, got {json_type(given)}"
    if kind.endswith("_type") and where == "body":
        return f"{text[0].lower()}{text[1:]}, got {json_type(given)}"
    return text[0].lower() + text[1:] if kind != "invalid_value" else text


def parse(model: type[M], data: Any, where: str, now: datetime | None = None) -> M:
    """``data`` validated as ``model``; any mistake is an ``InvalidRequest`` naming the field."""
    try:
        return model.model_validate(data, context={"now": now} if now else None)
    except ValidationError as exc:
        raise invalid_input(exc, model, where) from exc


def single_values(items: list[tuple[str, str]]) -> Mapping[str, str]:
    """Query parameters as a mapping; one given twice is refused rather than half-read."""
    seen: dict[str, str] = {}
    for name, value in items:
        if name in seen:
            raise InvalidRequest(
                f"{name[:40]}: given more than once", param=name[:40], code="invalid_value"
            )
        seen[name] = value
    return seen
