"""Strict readers for the admin API's bodies and query strings (also used by the CLI).

Every error is a 400 that names the field and says what is accepted. Money arrives in dollars,
as a decimal string or a JSON number, and becomes integer micro-dollars exactly: more than six
decimal places is refused rather than rounded. Nothing here touches HTTP or the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, get_args

from modelyard.core.errors import InvalidRequest
from modelyard.core.money import dollars_to_micros
from modelyard.services.tenancy import PROJECT_ID, parse_duration
from modelyard.store.tenancy import Limits
from modelyard.store.usage import GroupBy

MAX_RATE = 10**9
MAX_DOLLARS = 10**9
MAX_EXPIRY = timedelta(days=3650)
MAX_LOOKBACK = timedelta(days=36500)
KEY_ID = re.compile(r"^[a-z0-9]{12}$")
# Deployment names travel comma-separated in the store, so a comma can never be part of one.
DEPLOYMENT = re.compile(r"^[^,\x00-\x1f\x7f]{1,128}$")
_TEXT = re.compile(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")
_DOLLARS = re.compile(r"^\d{1,10}(\.\d{1,6})?$")
_MICRO = Decimal("0.000001")
_SHORT_DURATION = re.compile(r"^\d{1,7}[smhdw]$")
GROUPS: tuple[str, ...] = tuple(g for g in get_args(GroupBy) if g not in ("provider", "status"))
LIMIT_FIELDS = ("rpm", "tpm", "daily_budget_usd", "monthly_budget_usd")
ROLES = ("member", "owner", "operator")


def bad(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param, code="invalid_value")


def json_type(value: Any) -> str:
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


def body_object(value: Any, accepted: Sequence[str]) -> dict[str, Any]:
    """The body as an object holding only ``accepted`` fields."""
    if not isinstance(value, dict):
        raise bad("body", f"must be a JSON object, got {json_type(value)}")
    for name in value:
        if name not in accepted:
            raise InvalidRequest(
                f"unknown field {name!r}; accepted fields: {', '.join(accepted)}",
                param=name,
                code="unknown_field",
            )
    return value


def text(value: Any, param: str, *, max_len: int) -> str:
    if not isinstance(value, str):
        raise bad(param, f"must be a string, got {json_type(value)}")
    if len(value) > max_len:
        raise bad(param, f"must be at most {max_len} characters, got {len(value)}")
    if not _TEXT.fullmatch(value):
        raise bad(param, "must not contain control characters")
    return value


def optional_text(body: Mapping[str, Any], name: str, *, max_len: int) -> str | None:
    value = body.get(name)
    return None if value is None else text(value, name, max_len=max_len)


def project_id(value: Any, param: str = "id") -> str:
    if not isinstance(value, str):
        raise bad(param, f"must be a string, got {json_type(value)}")
    if not PROJECT_ID.fullmatch(value):
        raise bad(
            param,
            f"{value[:80]!r} is not a project id: use 1-64 lowercase letters, digits, _ or -, "
            "starting with a letter or digit",
        )
    return value


def key_id(value: str, param: str = "key_id") -> str:
    if not KEY_ID.fullmatch(value):
        raise bad(param, f"{value[:80]!r} is not a key id: 12 lowercase letters or digits")
    return value


def rate(value: Any, param: str) -> int | None:
    """A requests or tokens per minute limit: 1..10^9, or null for none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(param, f"must be an integer or null, got {json_type(value)}")
    if not 1 <= value <= MAX_RATE:
        raise bad(param, f"must be between 1 and {MAX_RATE}, got {value}")
    return value


def dollars(value: Any, param: str) -> int | None:
    """Dollars (a decimal string like ``"12.50"`` or a number) as micro-dollars; null: none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise bad(param, f"must be a decimal string, a number or null, got {json_type(value)}")
    # A JSON number is read back as the shortest decimal that round-trips, i.e. what was sent.
    written = value if isinstance(value, str) else repr(value)
    if isinstance(value, str) and not _DOLLARS.fullmatch(written):
        raise bad(param, f"{written[:40]!r}: write dollars as digits with up to 6 decimals")
    try:
        amount = Decimal(written)
    except InvalidOperation as exc:
        raise bad(param, f"{written[:40]!r} is not a dollar amount") from exc
    if not amount.is_finite() or not 0 <= amount <= MAX_DOLLARS:
        raise bad(param, f"must be between 0 and {MAX_DOLLARS} dollars, got {written[:40]}")
    if amount != amount.quantize(_MICRO):
        raise bad(param, "has more than 6 decimal places (the unit is a micro-dollar)")
    return dollars_to_micros(amount)


def limits_from(body: Mapping[str, Any], base: Limits | None = None) -> Limits:
    """The limit fields present in ``body`` over ``base`` (absent: kept; null: cleared)."""
    limits = base or Limits()
    if "rpm" in body:
        limits = replace(limits, rpm=rate(body["rpm"], "rpm"))
    if "tpm" in body:
        limits = replace(limits, tpm=rate(body["tpm"], "tpm"))
    if "daily_budget_usd" in body:
        daily = dollars(body["daily_budget_usd"], "daily_budget_usd")
        limits = replace(limits, daily_budget_micros=daily)
    if "monthly_budget_usd" in body:
        monthly = dollars(body["monthly_budget_usd"], "monthly_budget_usd")
        limits = replace(limits, monthly_budget_micros=monthly)
    return limits


def duration(value: Any, param: str, maximum: timedelta) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s``: more than zero and at most ``maximum``."""
    if not isinstance(value, str):
        raise bad(param, f'must be a duration string like "30d", got {json_type(value)}')
    if not _SHORT_DURATION.fullmatch(value):
        raise bad(param, f"{value[:40]!r} is not a duration; use a number and s, m, h, d or w")
    span = parse_duration(value)
    if span <= timedelta(0) or span > maximum:
        raise bad(param, f"must be more than 0s and at most {maximum.days}d, got {value}")
    return span


def deployments(value: Any, param: str = "deployments") -> tuple[str, ...] | None:
    """A list of deployment names, or null for every deployment."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise bad(param, f"must be an array of deployment names or null, got {json_type(value)}")
    if not value or len(value) > 1000:
        raise bad(param, "must name 1 to 1000 deployments (null: every deployment)")
    names: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not DEPLOYMENT.fullmatch(item):
            raise bad(f"{param}[{i}]", "must be a deployment name (1-128 characters, no commas)")
        if item not in names:
            names.append(item)
    return tuple(names)


def moment(value: str, param: str, now: datetime) -> datetime:
    """An ISO 8601 date or time (UTC when no offset is given), or a duration back from ``now``."""
    value = value.strip()
    if _SHORT_DURATION.fullmatch(value):
        return now - duration(value, param, MAX_LOOKBACK)
    try:
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise bad(
            param, f"{value[:40]!r}: use an ISO 8601 date or time (2025-01-31T00:00Z) or 7d"
        ) from exc


@dataclass(frozen=True, slots=True)
class UsageQuery:
    by: GroupBy
    project_id: str | None
    key_id: str | None
    deployment: str | None
    since: datetime | None
    until: datetime | None
    format: str
    limit: int


USAGE_PARAMS = ("by", "project", "key", "deployment", "since", "until", "format", "limit")
MAX_ROWS = 100_000


def usage_query(params: Mapping[str, str], now: datetime) -> UsageQuery:
    by = params.get("by", "model")
    if by not in GROUPS:
        raise bad("by", f"{by[:40]!r}: group by one of {', '.join(GROUPS)}")
    fmt = params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise bad("format", f"{fmt[:40]!r}: use json or csv")
    project = params.get("project")
    key = params.get("key")
    deployment = params.get("deployment")
    if deployment is not None and not DEPLOYMENT.fullmatch(deployment):
        raise bad("deployment", "must be a deployment name (1-128 characters, no commas)")
    since = params.get("since")
    until = params.get("until")
    limit = params.get("limit", str(MAX_ROWS // 10))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_ROWS:
        raise bad("limit", f"must be an integer between 1 and {MAX_ROWS}")
    return UsageQuery(
        by=by,  # type: ignore[arg-type]  # checked against GROUPS above
        project_id=project_id(project, "project") if project is not None else None,
        key_id=key_id(key, "key") if key is not None else None,
        deployment=deployment,
        since=moment(since, "since", now) if since is not None else None,
        until=moment(until, "until", now) if until is not None else None,
        format=fmt,
        limit=int(limit),
    )


def only_params(params: Mapping[str, str], keys: Sequence[str], accepted: Sequence[str]) -> None:
    """Refuse query parameters outside ``accepted`` and repeated ones."""
    for name in params:
        if name not in accepted:
            listed = ", ".join(accepted) if accepted else "none"
            raise InvalidRequest(
                f"unknown query parameter {name[:40]!r}; accepted: {listed}",
                param=name[:40],
                code="unknown_parameter",
            )
    seen: set[str] = set()
    for name in keys:
        if name in seen:
            raise bad(name, "given more than once")
        seen.add(name)
