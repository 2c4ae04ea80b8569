"""Who a person signed in through single sign-on is here: their claims mapped to a role and
projects by the configured rules. Pure: the token checks and the provider's HTTP are in
``services/sso.py``.

Every rule whose claim matches counts; the person's role is the highest matched (operator,
then owner, then member) and their projects are those of the rules giving that role, in the
rules' order (memberships at lower roles are kept for the portal). No rule matched: the default
role and projects, or refused (403 ``sso_no_role``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from modelyard.core.errors import PermissionDenied
from modelyard.tenancy.keys import Principal, Role

_RANK: Final[Mapping[str, int]] = {"operator": 3, "owner": 2, "member": 1}


@dataclass(frozen=True, slots=True)
class ClaimRule:
    claim: str
    value: str
    role: Role
    projects: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Identity:
    """A signed-in person: the provider's issuer and subject, a few profile claims, and what the
    rules made of their claims. ``memberships``: every (project, role) the rules granted."""

    issuer: str
    subject: str
    email: str | None
    name: str | None
    role: Role
    projects: tuple[str, ...]
    memberships: tuple[tuple[str, Role], ...] = ()

    def principal(self, project: str | None = None) -> Principal:
        """The admin API's caller acting in ``project`` (the ``x-modelyard-project`` header or
        the portal's switcher) with their role there; None: the highest role, acting in its
        first project. An operator acts everywhere whatever the project. A project they are no
        member of: 403 naming it."""
        if self.role == "operator":
            return Principal(key_id=None, role="operator", user=self.subject)
        if project is None:
            first = self.projects[0] if self.projects else None
            return Principal(key_id=None, role=self.role, project_id=first, user=self.subject)
        roles = [r for p, r in self.memberships if p == project]
        if not roles:
            raise not_a_member(project, f"user {self.subject!r}", self.choices)
        role = max(roles, key=_RANK.__getitem__)
        return Principal(key_id=None, role=role, project_id=project, user=self.subject)

    @property
    def choices(self) -> tuple[str, ...]:
        """The projects this person may act in (empty for an operator: every one)."""
        if self.role == "operator":
            return ()
        return tuple(dict.fromkeys(p for p, _ in self.memberships))


def not_a_member(project: str, who: str, choices: Sequence[str]) -> PermissionDenied:
    """The 403 for acting in a project one is not a member of, naming it and the choices."""
    allowed = ", ".join(choices) or "none"
    return PermissionDenied(
        f"{who} is not a member of project {project!r}; their projects: {allowed}",
        param="x-modelyard-project",
        code="not_a_member",
    )


def _matches(claims: Mapping[str, Any], rule: ClaimRule) -> bool:
    value = claims.get(rule.claim)
    if isinstance(value, list):
        return rule.value in value
    return isinstance(value, str | int | bool) and str(value) == rule.value


def identity_of(
    issuer: str,
    claims: Mapping[str, Any],
    rules: Sequence[ClaimRule],
    default: ClaimRule | None = None,
) -> Identity:
    """The ``Identity`` of verified ``claims`` (``sub`` required). ``default``: what a person
    matching no rule gets (its claim and value unused); None: refused."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise PermissionDenied("the token has no subject", code="sso_no_subject")
    matched = [r for r in rules if _matches(claims, r)]
    if not matched:
        if default is None:
            raise PermissionDenied(
                f"user {subject!r} has no role here: none of their claims matches a rule of "
                "sso.roles",
                code="sso_no_role",
            )
        matched = [default]
    top = max(_RANK[r.role] for r in matched)
    role = next(r.role for r in matched if _RANK[r.role] == top)
    projects = tuple(dict.fromkeys(p for r in matched if r.role == role for p in r.projects))
    memberships = tuple(dict.fromkeys((p, r.role) for r in matched for p in r.projects))
    return Identity(
        issuer, subject, _text(claims.get("email")), _text(claims.get("name")), role,
        projects, memberships,
    )  # fmt: skip


def _text(value: Any) -> str | None:
    return value[:255] if isinstance(value, str) and value else None
