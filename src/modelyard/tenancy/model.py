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


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One administrative change: who made it (``key:<id>``, ``user:<subject>``, ``cli:<name>``),
    when, from where (the client's address), what (``kind``: ``key.create`` ...; ``target``: the
    id changed) and the values before and after (JSON text; secrets never, only ids and hashes).
    ``seq`` is the store's order (0 until stored)."""

    at: datetime
    actor: str
    client: str | None
    kind: str
    target: str | None
    before: str | None
    after: str | None
    request_id: str | None = None
    seq: int = 0


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit entries a query covers; None: any. ``kind`` matches a whole kind
    (``key.create``) or a prefix ending in a dot (``key.``)."""

    actor: str | None = None
    kind: str | None = None
    since: datetime | None = None
    after_seq: int | None = None  # paging: entries after this one


@dataclass(frozen=True, slots=True)
class SsoUser:
    """A person known through single sign-on, recorded when first seen (just in time) and
    updated at each sign-in: the identity provider's issuer and subject, and what the mapping
    made of their claims at the last sign-in."""

    issuer: str
    subject: str
    email: str | None
    name: str | None
    role: str
    projects: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
