"""The tenancy domain's plain records: projects, API keys, their limits, a usage query's filter.

They are what the use cases, the key ring and the admin API talk about; ``store/`` maps its rows
to and from them and imports them from here (store -> ``tenancy.model``, and nothing else of
``tenancy``). This module imports nothing from the package, so any layer may use it without
pulling the limiter or the key ring along.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Limits:
    """Requests and tokens per minute, daily and monthly budgets (micro-dollars); None: none."""

    rpm: int | None = None
    tpm: int | None = None
    daily_budget_micros: int | None = None
    monthly_budget_micros: int | None = None


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    description: str | None
    limits: Limits
    created_at: datetime
    # The guardrail policy attached by the admin API (a policy name of the config, or "off");
    # None: none attached here (the config's attachments decide).
    guardrails: str | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record; ``digest`` is the SHA-256 of the whole key (the secret is never kept)."""

    id: str
    digest: str
    role: str
    project_id: str | None
    name: str | None
    deployments: tuple[str, ...] | None  # None: every deployment
    limits: Limits
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    guardrails: str | None = None  # as on ``Project``


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Which ledger rows a usage query covers; None: any. ``until`` is exclusive."""

    project_id: str | None = None
    key_id: str | None = None
    deployment: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    guardrail: str | None = None  # rows with a verdict of this guard ("*": of any guard)
