"""The JSON and CSV shapes of the admin API (the CLI's ``--json`` prints the same shapes).

Money is shown twice: exact integer micro-dollars and the same amount as a decimal dollar
string. A key's digest never leaves the store.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from modelyard.core.money import micros_to_dollars
from modelyard.routing.table import Deployment
from modelyard.store.tenancy import ApiKey, Limits, Project
from modelyard.store.usage import UsageRecord
from modelyard.tenancy.keys import Principal

ONCE_WARNING = (
    "This is the only time the key is shown: store it now. Modelyard keeps only its digest."
)
CSV_FIELDS: tuple[str, ...] = (*UsageRecord.__dataclass_fields__, "cost_usd")


def usd(micros: int | None) -> str | None:
    """Micro-dollars as a plain decimal dollar string (``"12.5"``, ``"0.000001"``)."""
    if micros is None:
        return None
    return format(micros_to_dollars(micros).normalize(), "f")


def stamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def limits_json(limits: Limits) -> dict[str, Any]:
    return {
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "daily_budget_usd": usd(limits.daily_budget_micros),
        "monthly_budget_usd": usd(limits.monthly_budget_micros),
        "daily_budget_micros": limits.daily_budget_micros,
        "monthly_budget_micros": limits.monthly_budget_micros,
    }


def project_json(project: Project) -> dict[str, Any]:
    return {
        "object": "project",
        "id": project.id,
        "description": project.description,
        **limits_json(project.limits),
        "created_at": stamp(project.created_at),
    }


def key_status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    expires = key.expires_at
    if expires is not None and (expires if expires.tzinfo else expires.replace(tzinfo=UTC)) <= now:
        return "expired"
    return "active"


def key_json(key: ApiKey, now: datetime) -> dict[str, Any]:
    return {
        "object": "api_key",
        "id": key.id,
        "name": key.name,
        "role": key.role,
        "project": key.project_id,
        "deployments": list(key.deployments) if key.deployments else None,
        **limits_json(key.limits),
        "status": key_status(key, now),
        "expires_at": stamp(key.expires_at),
        "revoked_at": stamp(key.revoked_at),
        "created_at": stamp(key.created_at),
    }


def new_key_json(key: ApiKey, secret: str, now: datetime) -> dict[str, Any]:
    return {**key_json(key, now), "secret": secret, "warning": ONCE_WARNING}


def principal_json(principal: Principal) -> dict[str, Any]:
    return {
        "object": "principal",
        "key_id": principal.key_id,
        "role": principal.role,
        "project": principal.project_id,
        "deployments": sorted(principal.deployments) if principal.deployments else None,
        "key_limits": limits_json(principal.key_limits),
        "project_limits": limits_json(principal.project_limits),
    }


def deployment_json(deployment: Deployment) -> dict[str, Any]:
    shadow = deployment.shadow
    return {
        "object": "deployment",
        "name": deployment.name,
        "description": deployment.description,
        "strategy": deployment.strategy,
        "targets": [
            {"provider": t.provider, "model": t.model, "weight": t.weight}
            for t in deployment.targets
        ],
        "shadow": (
            {
                "provider": shadow.target.provider,
                "model": shadow.target.model,
                "percent": shadow.percent,
            }
            if shadow
            else None
        ),
    }


def usage_group_json(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "cost_usd": usd(row.get("cost_micros", 0))}


def usage_totals(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    names = ("requests", "errors", "input_tokens", "output_tokens", "cached_input_tokens")
    totals = {name: 0 for name in (*names, "reasoning_tokens", "cost_micros")}
    for row in rows:
        for name in totals:
            totals[name] += int(row.get(name) or 0)
    return {**totals, "cost_usd": usd(totals["cost_micros"])}


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(header))
    writer.writerows(_safe_row(r) for r in rows)
    return out.getvalue()


def record_row(record: UsageRecord) -> list[Any]:
    values = asdict(record)
    values["created_at"] = stamp(record.created_at)
    return [*values.values(), usd(record.cost_micros)]


def records_csv(records: Iterable[UsageRecord], chunk: int = 500) -> Iterator[str]:
    """The ledger as CSV, header first, in chunks of ``chunk`` rows (for a streamed body)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for n, record in enumerate(records, 1):
        writer.writerow(_safe_row(record_row(record)))
        if n % chunk == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _safe_row(values: Iterable[Any]) -> list[Any]:
    # A cell starting with = + - @ is run as a formula by spreadsheets; names come from
    # configs and upstreams, so quote such text cells (numbers are left alone).
    return ["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v for v in values]
