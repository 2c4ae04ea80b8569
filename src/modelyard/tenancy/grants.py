"""What a principal may grant: the one place that decides it, for every key created or changed.

A key is a grant of five things: a role, a project, the deployments it may call, its limits and
its expiry. Each has an order, "wider" meaning "may do more":

- role: member < owner < operator;
- project: an operator reaches every project, anyone else only its own;
- deployments: ``None`` (every deployment) is the widest, otherwise set inclusion;
- limits, field by field: ``None`` (no limit) is the widest, otherwise the larger number;
- expiry: ``None`` (never) is the widest, otherwise the later moment.

A write passes when, in every one of them, the result is no wider than the key was before (a
change that narrows or keeps) or no wider than the grantor's own key. A new key has no "before":
each part must be within the grantor's. So an owner limited to deployment ``a`` with 10 requests
a minute can neither mint a key for ``b`` nor one without a limit, nor clear its own limit. A part
left unset on a new key is the most the grantor may give (``bounded``), not "unlimited".

A key's or project's guardrail policy (attached by name through the admin API) is not ordered
like the rest: ``guardrails_change`` decides it. An operator attaches, changes and removes any;
an owner may attach a policy to a key of its project that has none, never ``off`` (which would
exempt the key from its project's, its deployment's or the default policy) and never change or
remove one already attached; a project's policy is the operator's alone (its writes are
operator-only).

Who may manage which project at all (an owner its own, a member none) is checked before, by the
use cases (``services/tenancy.py``); this module only compares grants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Final, TypeVar

from modelyard.core.errors import PermissionDenied
from modelyard.core.money import micros_to_dollars
from modelyard.tenancy.keys import ROLES, Principal, Role
from modelyard.tenancy.model import ApiKey, Limits

T = TypeVar("T")
RANK: Final[Mapping[str, int]] = {"member": 0, "owner": 1, "operator": 2}
# The admin API's names for the limits, so a refusal names the field the client sent.
LIMIT_PARAMS: Final[Mapping[str, str]] = {
    "rpm": "rpm",
    "tpm": "tpm",
    "daily_budget_micros": "daily_budget_usd",
    "monthly_budget_micros": "monthly_budget_usd",
}


@dataclass(frozen=True, slots=True)
class Grant:
    """What a key allows; ``None`` in deployments, a limit or the expiry means "no bound"."""

    role: Role
    project_id: str | None
    deployments: frozenset[str] | None
    limits: Limits
    expires_at: datetime | None


def grant_of(principal: Principal) -> Grant:
    """The grant a principal holds (what its own key allows)."""
    return Grant(
        principal.role,
        principal.project_id,
        principal.deployments,
        principal.key_limits,
        principal.expires_at,
    )


def grant_of_key(key: ApiKey) -> Grant:
    """The grant a stored key holds."""
    role: Role = "member"
    for known in ROLES:
        if key.role == known:
            role = known
    deployments = frozenset(key.deployments) if key.deployments else None
    return Grant(role, key.project_id, deployments, key.limits, key.expires_at)


def bounded(own: Grant, wanted: Grant) -> Grant:
    """``wanted`` with every part left unset (``None``) replaced by the grantor's own bound
    (``own``). A grantor without a bound leaves it unset; one with a bound gives at most that."""
    limits = Limits(
        **{
            f.name: _or(getattr(wanted.limits, f.name), getattr(own.limits, f.name))
            for f in fields(Limits)
        }
    )
    return replace(
        wanted,
        deployments=_or(wanted.deployments, own.deployments),
        limits=limits,
        expires_at=_or(wanted.expires_at, own.expires_at),
    )


def _or(value: T | None, default: T | None) -> T | None:
    return default if value is None else value


def check(own: Grant, after: Grant, before: Grant | None = None) -> None:
    """Refuse (403 naming the field) a key ``after`` wider than both ``before`` and the
    grantor's own grant ``own``.

    ``before`` is the key as it was (``None``: a new key, every part must be within ``own``)."""
    if own.role != "operator" and after.project_id != own.project_id:
        _refuse("project", f"a key of project {after.project_id!r}", "your own project only")
    # A part of ``before`` is boxed in a tuple, since its own None means "no bound".
    was = before
    _part("role", after.role, (was.role,) if was else None, own.role, _role_within, _role_text)
    _part(
        "deployments",
        after.deployments,
        (was.deployments,) if was else None,
        own.deployments,
        _set_within,
        _set_text,
    )
    for f in fields(Limits):
        _part(
            LIMIT_PARAMS[f.name],
            getattr(after.limits, f.name),
            (getattr(was.limits, f.name),) if was else None,
            getattr(own.limits, f.name),
            _number_within,
            _number_text if f.name in ("rpm", "tpm") else _dollars_text,
        )
    _part(
        "expires_in",
        after.expires_at,
        (was.expires_at,) if was else None,
        own.expires_at,
        _moment_within,
        _moment_text,
    )


def guardrails_change(role: Role, before: str | None, after: str | None) -> None:
    """Refuse (403 naming ``guardrails``) a key's policy change its grantor may not make."""
    if role == "operator" or after == before:
        return
    if after == "off":
        _refuse("guardrails", "'off' (no guards)", "a policy by name; only an operator exempts")
    if before is not None:
        _refuse(
            "guardrails",
            f"a change of the attached policy {before!r}",
            "a policy on keys without one; an operator changes or removes one",
        )


def _part(
    param: str,
    after: T,
    before: tuple[T] | None,
    own: T,
    within: Callable[[T, T], bool],
    text: Callable[[T], str],
) -> None:
    """One part of a grant: no wider than it was (``before``, boxed; ``None``: a new key), or
    no wider than the grantor's own."""
    if before is not None and within(after, before[0]):
        return
    if not within(after, own):
        _refuse(param, text(after), f"at most {text(own)} (your own key's)")


def _refuse(param: str, wanted: str, allowed: str) -> None:
    raise PermissionDenied(
        f"{param}: you may not grant {wanted}; you may grant {allowed}",
        param=param,
        code="grant_exceeds_own",
    )


def _role_within(role: Role, bound: Role) -> bool:
    return RANK[role] <= RANK[bound]


def _role_text(role: Role) -> str:
    return f"the {role} role"


def _set_within(names: frozenset[str] | None, bound: frozenset[str] | None) -> bool:
    if bound is None:
        return True
    return names is not None and names <= bound


def _set_text(names: frozenset[str] | None) -> str:
    return "every deployment" if names is None else f"[{', '.join(sorted(names))}]"


def _number_within(value: int | None, bound: int | None) -> bool:
    if bound is None:
        return True
    return value is not None and value <= bound


def _number_text(value: int | None) -> str:
    return "no limit" if value is None else str(value)


def _dollars_text(micros: int | None) -> str:
    return "no budget" if micros is None else f"${micros_to_dollars(micros).normalize():f}"


def _moment_within(moment: datetime | None, bound: datetime | None) -> bool:
    if bound is None:
        return True
    return moment is not None and _aware(moment) <= _aware(bound)


def _moment_text(moment: datetime | None) -> str:
    return "no expiry" if moment is None else f"expiry {_aware(moment).isoformat()}"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
