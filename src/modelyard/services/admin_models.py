"""The admin API's request and response bodies, as pydantic models (also the CLI's ``--json``).

A field is written once, here: the server validates with these models, renders with them, and
generates its OpenAPI document from them; the CLI reads its arguments through the same models.
Requests refuse unknown fields and are strict (no ``"5"`` for 5). Money is shown twice in
responses: exact integer micro-dollars and the same amount as a decimal dollar string. A key's
digest never leaves the store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from modelyard.core.errors import InvalidRequest
from modelyard.core.money import micros_to_dollars
from modelyard.routing import table
from modelyard.services.admin_fields import (
    KEY_ID,
    Count,
    DailyBudget,
    DeploymentName,
    Deployments,
    Description,
    Expiry,
    KeyId,
    KeyName,
    MonthlyBudget,
    ProjectId,
    RequestsPerMinute,
    Since,
    TokensPerMinute,
    Until,
)
from modelyard.services.tenancy import KeySpec
from modelyard.tenancy import keys
from modelyard.tenancy import model as domain
from modelyard.tenancy.keys import Role
from modelyard.tenancy.model import UsageFilter

ONCE_WARNING = (
    "This is the only time the key is shown: store it now. Modelyard keeps only its digest."
)
KeyStatus = Literal["active", "revoked", "expired"]
# Grouping by provider or status exists in the ledger but is not offered by the API.
UsageGroup = Literal["project", "key", "deployment", "model", "day", "status"]
MAX_ROWS = 100_000
_TIME: JsonDict = {"format": "date-time"}


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


def key_status(key: domain.ApiKey, now: datetime) -> KeyStatus:
    if key.revoked_at is not None:
        return "revoked"
    expires = key.expires_at
    if expires is not None and (expires if expires.tzinfo else expires.replace(tzinfo=UTC)) <= now:
        return "expired"
    return "active"


# --- requests -------------------------------------------------------------------------------


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LimitsPatch(Request):
    """Fields given replace the limit; null clears it; absent ones stay."""

    rpm: RequestsPerMinute = None
    tpm: TokensPerMinute = None
    daily_budget_usd: DailyBudget = None
    monthly_budget_usd: MonthlyBudget = None

    def limits(self, base: domain.Limits | None = None) -> domain.Limits:
        """The limits given over ``base`` (budgets are micro-dollars once validated)."""
        given = self.model_fields_set
        current = base or domain.Limits()
        daily, monthly = self.daily_budget_usd, self.monthly_budget_usd
        return domain.Limits(
            rpm=self.rpm if "rpm" in given else current.rpm,
            tpm=self.tpm if "tpm" in given else current.tpm,
            daily_budget_micros=daily
            if "daily_budget_usd" in given
            else current.daily_budget_micros,
            monthly_budget_micros=(
                monthly if "monthly_budget_usd" in given else current.monthly_budget_micros
            ),
        )


GuardrailsName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description='a guardrail policy named in the config, or "off" (no guards); '
        "null: none attached here",
    ),
]


class ProjectCreate(LimitsPatch):
    id: ProjectId
    description: Description | None = None
    guardrails: GuardrailsName | None = None


class Patch(LimitsPatch):
    """A project's or key's limits (as ``LimitsPatch``) and its guardrail policy: a name,
    ``off``, or null to detach; absent: unchanged."""

    guardrails: GuardrailsName | None = None

    def policy(self, current: str | None) -> str | None:
        return self.guardrails if "guardrails" in self.model_fields_set else current


class KeyCreate(LimitsPatch):
    """A member or owner key needs ``project``; an operator key has none. ``deployments`` must
    name deployments the server serves; ``expires_in`` is at most 3650d."""

    project: ProjectId | None = None
    role: Role = "member"
    name: KeyName | None = None
    deployments: Deployments | None = None
    expires_in: Expiry | None = None
    guardrails: GuardrailsName | None = None

    def spec(self) -> KeySpec:
        """The key to make; a role and a project that do not go together are refused."""
        if self.role == "operator" and self.project is not None:
            raise _bad("project", "an operator key belongs to no project; leave project out")
        if self.role != "operator" and self.project is None:
            raise _bad("project", "is required: a member or owner key belongs to a project")
        return KeySpec(
            project_id=self.project,
            role=self.role,
            name=self.name,
            deployments=tuple(self.deployments) if self.deployments else None,
            limits=self.limits(),
            expires_in=self.expires_in,
            guardrails=self.guardrails,
        )


def _bad(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param, code="invalid_value")


class Query(BaseModel):
    """Query parameters: strings on the wire, so not strict; unknown ones are refused."""

    model_config = ConfigDict(extra="forbid")


class NoQuery(Query):
    pass


class KeysQuery(Query):
    project: ProjectId | None = Field(None, description="a project id")


class UsageCsvQuery(Query):
    project: ProjectId | None = Field(None, description="a project id")
    key: KeyId | None = Field(None, description="a key id")
    deployment: DeploymentName | None = Field(None, description="a deployment name")
    guardrail: str | None = Field(
        None,
        pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$",
        description="only requests with a verdict of this guard (*: of any guard)",
    )
    since: Since | None = None
    until: Until | None = None
    limit: Count = Field(
        MAX_ROWS // 10, ge=1, le=MAX_ROWS, description="CSV: at most this many rows"
    )

    def filter(self) -> UsageFilter:
        return UsageFilter(
            self.project, self.key, self.deployment, self.since, self.until, self.guardrail
        )


class UsageQuery(UsageCsvQuery):
    by: UsageGroup = Field("model", description="what to group by")
    format: Literal["json", "csv"] = Field("json", description="csv: the ledger rows")


class ProjectPath(Query):
    project_id: ProjectId


class KeyPath(Query):
    key_id: KeyId


# --- responses ------------------------------------------------------------------------------


class Response(BaseModel):
    # Every field is always present (null when unset), so the document marks each required.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class Limits(Response):
    rpm: int | None
    tpm: int | None
    daily_budget_usd: str | None
    monthly_budget_usd: str | None
    daily_budget_micros: int | None
    monthly_budget_micros: int | None

    @staticmethod
    def fields(limits: domain.Limits) -> dict[str, Any]:
        return {
            "rpm": limits.rpm,
            "tpm": limits.tpm,
            "daily_budget_usd": usd(limits.daily_budget_micros),
            "monthly_budget_usd": usd(limits.monthly_budget_micros),
            "daily_budget_micros": limits.daily_budget_micros,
            "monthly_budget_micros": limits.monthly_budget_micros,
        }

    @classmethod
    def of(cls, limits: domain.Limits) -> Limits:
        return cls(**cls.fields(limits))


class Project(Limits):
    object: Literal["project"] = "project"
    id: str
    description: str | None
    guardrails: str | None = Field(description="the policy attached here (admin API)")
    created_at: str = Field(json_schema_extra=_TIME)

    @classmethod
    def of_project(cls, project: domain.Project) -> Project:
        return cls(
            id=project.id,
            description=project.description,
            guardrails=project.guardrails,
            created_at=stamp(project.created_at) or "",
            **Limits.fields(project.limits),
        )


class ApiKey(Limits):
    object: Literal["api_key"] = "api_key"
    id: str = Field(json_schema_extra={"pattern": KEY_ID.pattern})
    name: str | None
    role: Role
    project: str | None
    deployments: list[str] | None
    status: KeyStatus
    guardrails: str | None = Field(description="the policy attached here (admin API)")
    expires_at: str | None = Field(json_schema_extra=_TIME)
    revoked_at: str | None = Field(json_schema_extra=_TIME)
    created_at: str = Field(json_schema_extra=_TIME)

    @classmethod
    def fields_of(cls, key: domain.ApiKey, now: datetime) -> dict[str, Any]:
        return {
            "id": key.id,
            "name": key.name,
            "role": key.role,
            "project": key.project_id,
            "deployments": list(key.deployments) if key.deployments else None,
            **Limits.fields(key.limits),
            "status": key_status(key, now),
            "guardrails": key.guardrails,
            "expires_at": stamp(key.expires_at),
            "revoked_at": stamp(key.revoked_at),
            "created_at": stamp(key.created_at),
        }

    @classmethod
    def of_key(cls, key: domain.ApiKey, now: datetime) -> ApiKey:
        return cls(**cls.fields_of(key, now))


class NewApiKey(ApiKey):
    secret: str = Field(description="Shown only here.")
    warning: str

    @classmethod
    def of_new(cls, key: domain.ApiKey, secret: str, now: datetime) -> NewApiKey:
        return cls(**cls.fields_of(key, now), secret=secret, warning=ONCE_WARNING)


class Principal(Response):
    object: Literal["principal"] = "principal"
    key_id: str | None
    user: str | None = Field(None, description="single sign-on: the provider's subject")
    role: Role
    project: str | None
    deployments: list[str] | None
    key_limits: Limits
    project_limits: Limits

    @classmethod
    def of(cls, principal: keys.Principal) -> Principal:
        return cls(
            key_id=principal.key_id,
            user=principal.user,
            role=principal.role,
            project=principal.project_id,
            deployments=sorted(principal.deployments) if principal.deployments else None,
            key_limits=Limits.of(principal.key_limits),
            project_limits=Limits.of(principal.project_limits),
        )


class Target(Response):
    provider: str
    model: str
    weight: float


class Shadow(Response):
    provider: str
    model: str
    percent: float


class Deployment(Response):
    object: Literal["deployment"] = "deployment"
    name: str
    description: str | None
    strategy: str  # a name in the strategy registry (built-in or plugin)
    targets: list[Target]
    shadow: Shadow | None

    @classmethod
    def of(cls, deployment: table.Deployment) -> Deployment:
        shadow = deployment.shadow
        return cls(
            name=deployment.name,
            description=deployment.description,
            strategy=deployment.strategy,
            targets=[
                Target(provider=t.provider, model=t.model, weight=t.weight)
                for t in deployment.targets
            ],
            shadow=(
                Shadow(
                    provider=shadow.target.provider,
                    model=shadow.target.model,
                    percent=shadow.percent,
                )
                if shadow
                else None
            ),
        )


class ProjectList(Response):
    object: Literal["list"] = "list"
    data: list[Project]


class KeyList(Response):
    object: Literal["list"] = "list"
    data: list[ApiKey]


class DeploymentList(Response):
    object: Literal["list"] = "list"
    data: list[Deployment]


class UsageTotals(Response):
    requests: int = Field(ge=0)
    errors: int = Field(ge=0)
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cached_input_tokens: int = Field(ge=0)
    reasoning_tokens: int = Field(ge=0)
    cost_micros: int = Field(ge=0)
    cost_usd: str

    COUNTS: ClassVar[tuple[str, ...]] = (
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "reasoning_tokens",
        "cost_micros",
    )

    @classmethod
    def of_rows(cls, rows: list[dict[str, Any]]) -> UsageTotals:
        totals = {name: sum(int(row.get(name) or 0) for row in rows) for name in cls.COUNTS}
        return cls(**totals, cost_usd=usd(totals["cost_micros"]) or "0")


class UsageRow(UsageTotals):
    """One group's totals; the group's value is under the ``by`` name (``"model": "gpt-4o"``)."""

    model_config = ConfigDict(extra="allow")

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> UsageRow:
        return cls(**row, cost_usd=usd(row.get("cost_micros", 0)) or "0")


class UsageFilterShown(Response):
    project: str | None
    key: str | None
    deployment: str | None
    since: str | None
    until: str | None
    guardrail: str | None

    @classmethod
    def of(cls, where: UsageFilter) -> UsageFilterShown:
        return cls(
            project=where.project_id,
            key=where.key_id,
            deployment=where.deployment,
            since=stamp(where.since),
            until=stamp(where.until),
            guardrail=where.guardrail,
        )


class UsageReport(Response):
    object: Literal["list"] = "list"
    by: UsageGroup
    filter: UsageFilterShown
    data: list[UsageRow]
    totals: UsageTotals


class ErrorDetail(Response):
    message: str
    type: str
    param: str | None
    code: str | None


class Error(Response):
    """Every error, in the OpenAI error shape; ``error.param`` names the field at fault."""

    error: ErrorDetail


# --- guardrails (issue 22) --------------------------------------------------------------------


class GuardrailsQuery(Query):
    deployment: DeploymentName = Field(description="the deployment called")
    key: KeyId | None = Field(None, description="the calling key's id (its project is looked up)")
    project: ProjectId | None = Field(None, description="the calling key's project")


class GuardShown(Response):
    order: int = Field(ge=1)
    name: str
    kind: str
    phases: list[str]
    action: Literal["block", "redact", "flag"]


class GuardrailsExplanation(Response):
    """The policy a call would get, chosen by the most specific attachment."""

    object: Literal["guardrails.explanation"] = "guardrails.explanation"
    deployment: str
    key: str | None
    project: str | None
    policy: str | None = Field(description="null: no guards apply")
    chosen_by: Literal["key", "project", "deployment", "default", "none"]
    source: Literal["admin", "config"] | None = Field(
        description="where the attachment was made: the admin API (stored) or the config"
    )
    attached_to: str | None
    missing: str | None = Field(
        description="a policy the admin API attached that the config no longer has: "
        "such calls are refused (500 guardrails_policy_missing)"
    )
    overrides: str | None = Field(
        description="the config's attachment at the same level that the admin API's overrides"
    )
    reversible: bool
    guards: list[GuardShown]
