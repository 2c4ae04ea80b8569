"""Keys and projects (operator; an owner in its own project): create (the secret shown once),
revoke, limits and budgets. Forms are read with the admin API's own request models and every
call goes through ``TenancyAdmin``, so the portal refuses exactly what the API refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from modelyard.core.errors import InvalidRequest, PermissionDenied
from modelyard.portal.web import Ctx, page
from modelyard.services import admin_models as models
from modelyard.services.admin_fields import parse
from modelyard.services.tenancy import TenancyAdmin, check_policy_name

_INTEGERS = frozenset({"rpm", "tpm"})
KEYS_SHOWN = 100  # keys per page, newest first
_LIMITS = ("rpm", "tpm", "daily_budget_usd", "monthly_budget_usd")


def _admin(ctx: Ctx) -> TenancyAdmin:
    if ctx.root.admin is None:
        raise PermissionDenied("projects and keys need a store ('modelyard serve')")
    if not ctx.user.manages_keys:
        raise PermissionDenied("keys and projects need the operator or owner role")
    return ctx.root.admin


def _body(ctx: Ctx, names: tuple[str, ...]) -> dict[str, Any]:
    """The form's fields among ``names`` as the admin API's JSON body: empty ones left out,
    counts as integers (a count that is not one stays text and is refused naming its field)."""
    body: dict[str, Any] = {}
    for name in names:
        value = ctx.field(name)
        if value:
            body[name] = int(value) if name in _INTEGERS and value.isdigit() else value
    return body


@page
async def keys_page(ctx: Ctx) -> Response:
    admin = _admin(ctx)
    principal = ctx.user.principal
    projects = await admin.projects(principal)
    chosen = ctx.field("project") or None
    if chosen is None and not ctx.user.operator:
        chosen = principal.project_id
    found = await admin.keys(principal, chosen)  # an owner asking for another project: 403
    raw = ctx.field("offset") or "0"
    offset = min(int(raw), len(found)) if raw.isdigit() and len(raw) < 10 else 0
    shown = sorted(found, key=lambda k: k.created_at, reverse=True)[offset : offset + KEYS_SHOWN]
    now = datetime.now(UTC)
    return ctx.render(
        "keys.html",
        projects=[models.Project.of_project(p) for p in projects],
        keys=[models.ApiKey.of_key(k, now) for k in shown],
        total=len(found),
        offset=offset,
        next_offset=offset + KEYS_SHOWN if offset + KEYS_SHOWN < len(found) else None,
        project=chosen or "",
        roles=("member", "owner", "operator") if ctx.user.operator else ("member", "owner"),
    )


@page
async def create_project(ctx: Ctx) -> Response:
    admin = _admin(ctx)
    body = parse(models.ProjectCreate, _body(ctx, ("id", "description", *_LIMITS)), "form")
    await admin.create_project(ctx.user.principal, body.id, body.description, body.limits())
    return ctx.render("done.html", message=f"Project {body.id} created.", back="/keys")


@page
async def create_key(ctx: Ctx) -> Response:
    admin = _admin(ctx)
    data = _body(ctx, ("project", "role", "name", "expires_in", *_LIMITS))
    names = [n.strip() for n in ctx.field("deployments").split(",") if n.strip()]
    if names:
        known = ctx.root.current.gateway.table.names
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InvalidRequest(
                f"deployments: no deployment {unknown[0][:64]!r}", param="deployments"
            )
        data["deployments"] = names
    if data.get("role") == "operator":
        data.pop("project", None)
    spec = parse(models.KeyCreate, data, "form", datetime.now(UTC)).spec()
    check_policy_name(spec.guardrails, ctx.root.current.gateway.policies.names())
    key, fresh = await admin.create_key(ctx.user.principal, spec)
    await ctx.root.keys_changed()  # the key works here from its first call
    shown = models.NewApiKey.of_new(key, fresh.secret, datetime.now(UTC))
    return ctx.render("key_created.html", key=shown, warning=models.ONCE_WARNING)


@page
async def revoke_key(ctx: Ctx) -> Response:
    admin = _admin(ctx)
    key_id = parse(models.KeyPath, {"key_id": ctx.request.path_params["key_id"]}, "path").key_id
    key = await admin.revoke_key(ctx.user.principal, key_id)
    await ctx.root.keys_changed()  # refused here before this page is shown
    return ctx.render("done.html", message=f"Key {key.id} revoked.", back="/keys")


@page
async def set_limits(ctx: Ctx) -> Response:
    """A project's limits and budgets (operator: an owner may not lift its own)."""
    admin = _admin(ctx)
    path = parse(models.ProjectPath, {"project_id": ctx.request.path_params["project_id"]}, "path")
    current = await admin.project(ctx.user.principal, path.project_id)
    body = parse(models.Patch, _body(ctx, _LIMITS), "form")
    await admin.set_project_limits(ctx.user.principal, path.project_id, body.limits(current.limits))
    await ctx.root.keys_changed()  # the project's keys carry its limits
    return ctx.render("done.html", message=f"Limits of {path.project_id} saved.", back="/keys")
