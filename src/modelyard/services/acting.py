"""Which project a caller acts in, when they may act in several: the admin API's
``x-modelyard-project`` header and the portal's project switcher.

A key belongs to one project (an operator's to none: it acts everywhere); a person signed in
through single sign-on may be a member of several, with a role in each
(``tenancy.sso.Identity``). Without a choice they act in their first project at their highest
role, as before. With one: a project they are no member of is a 403 naming it (whether it
exists or not: a non-member learns nothing about other projects), and a project that does not
exist, asked for by someone who could be a member of it (an operator, or a person whose claims
name it), is a 400.
"""

from __future__ import annotations

from modelyard.core.errors import InvalidRequest, NotFound
from modelyard.services.admin_fields import PROJECT_ID
from modelyard.services.tenancy import TenancyAdmin
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.sso import not_a_member

PROJECT_HEADER = "x-modelyard-project"


def requested_project(value: str | None) -> str | None:
    """The project a request asks to act in (None: no header), its form checked."""
    if value is None:
        return None
    value = value.strip()
    if not PROJECT_ID.fullmatch(value):
        shown = value if len(value) <= 64 else f"{value[:64]}..."
        raise InvalidRequest(
            f"{PROJECT_HEADER}: {shown!r} is not a project id (1-64 lowercase letters, "
            "digits, _ or -)",
            param=PROJECT_HEADER,
            code="invalid_project",
        )
    return value


def key_acting_in(principal: Principal, project: str) -> Principal:
    """A key's principal acting in ``project``: its own project, or any for an operator."""
    if principal.role == "operator" or principal.project_id == project:
        return principal
    own = (principal.project_id,) if principal.project_id else ()
    raise not_a_member(project, f"key {principal.key_id}", own)


async def must_exist(admin: TenancyAdmin | None, principal: Principal, project: str) -> None:
    """400 when ``project`` is not in the store (no store: nothing to check against)."""
    if admin is None:
        return
    try:
        await admin.project(principal, project)
    except NotFound as exc:
        raise InvalidRequest(
            f"{PROJECT_HEADER}: there is no project {project!r}",
            param=PROJECT_HEADER,
            code="unknown_project",
        ) from exc
