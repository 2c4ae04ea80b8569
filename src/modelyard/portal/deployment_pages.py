"""Deployments: the list with targets, strategy and health; a deployment's version history
with diffs; re-point, new weights and rollback (operator), each confirmed first.

A change is the one versioned change ``services.deployments`` records for the CLI's rollback
too (``change`` and ``rollback``), then this server reloads, exactly as ``modelyard
deployments rollback`` makes it do. Clients keep calling the deployment by its name.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response

from modelyard.config.schema import DeploymentConfig
from modelyard.core.errors import InvalidRequest, NotFound, PermissionDenied
from modelyard.portal.web import Ctx, page
from modelyard.routing.table import Deployment
from modelyard.services import deployments as versions
from modelyard.services.gateway import Gateway
from modelyard.services.tenancy import require_operator
from modelyard.store.deployment_versions import DeploymentVersion

MAX_TARGETS = 32
Field = Callable[[str, str], str]  # a form field's value by name, else the default given


def _health(gateway: Gateway, deployment: Deployment) -> list[dict[str, Any]]:
    board = gateway.router.health.snapshot()  # targets resolved at load, and any called
    rows = []
    for target in deployment.targets:
        health = board.get(target.key)
        calls, failed = health.recent() if health is not None else (0, 0)
        rows.append(
            {
                "target": target,
                "state": health.state if health is not None else "closed",
                "calls": calls,
                "window_s": health.settings.window_s if health is not None else None,
                "error_rate": failed / calls if calls else None,
                "ttft_ms": health.ttft_ewma * 1000 if health and health.ttft_ewma else None,
            }
        )
    return rows


def _visible(ctx: Ctx, name: str) -> Deployment:
    allowed = ctx.user.principal.deployments
    table = ctx.root.current.gateway.table
    if name not in table.names or (allowed is not None and name not in allowed):
        raise NotFound(f"no deployment {name!r} you may see", code="deployment_not_found")
    return table.resolve(name)


@page
async def deployment_list(ctx: Ctx) -> Response:
    gateway = ctx.root.current.gateway
    allowed = ctx.user.principal.deployments
    rows = [
        {"deployment": d, "health": _health(gateway, d)}
        for d in (gateway.table.resolve(n) for n in sorted(gateway.table.names))
        if allowed is None or d.name in allowed
    ]
    return ctx.render("deployments.html", rows=rows)


def _pretty(version: DeploymentVersion) -> list[str]:
    return json.dumps(json.loads(version.spec), indent=2, sort_keys=True).splitlines()


def _history(found: list[DeploymentVersion]) -> list[dict[str, Any]]:
    """Newest first, each with its diff against the version before it."""
    rows = []
    for i, version in enumerate(found):
        before = _pretty(found[i - 1]) if i else []
        diff = list(difflib.unified_diff(before, _pretty(version), lineterm="", n=1))[2:]
        rows.append({"v": version, "summary": versions.summary(version), "diff": diff})
    return rows[::-1]


@page
async def deployment_page(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    deployment = _visible(ctx, name)
    store = ctx.root.store
    found = await versions.history(store, name) if store is not None else []
    settings = ctx.root.current.settings
    return ctx.render(
        "deployment.html",
        deployment=deployment,
        health=_health(ctx.root.current.gateway, deployment),
        history=_history(found),
        live=found[-1].version if found else None,
        providers=sorted(versions.known_providers(settings)),
        has_store=store is not None,
    )


def _edited(ctx: Ctx, name: str, given: Field) -> tuple[DeploymentConfig, str]:
    """The served spec with the targets ``given`` (provider, model, weight); what changed."""
    current = ctx.root.current.settings.deployments[name]
    data = current.model_dump(mode="json")
    targets = data["targets"]
    for i, target in enumerate(targets[:MAX_TARGETS]):
        target["provider"] = given(f"provider_{i}", target["provider"])
        target["model"] = given(f"model_{i}", target["model"])
        weight = given(f"weight_{i}", str(target["weight"]))
        try:
            target["weight"] = float(weight)
        except ValueError:
            target["weight"] = math.nan
        if not math.isfinite(target["weight"]) or target["weight"] < 0:
            raise InvalidRequest(
                f"targets[{i}].weight: {weight!r} is not a number >= 0", param=f"weight_{i}"
            )
    try:
        spec = DeploymentConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidRequest(f"{where}: {first['msg']}", param=where) from exc
    pairs = zip(current.targets, spec.targets, strict=True)
    moved = any((a.provider, a.model) != (b.provider, b.model) for a, b in pairs)
    return spec, "repoint" if moved else "weights"


def _diff(old: DeploymentConfig, new: DeploymentConfig) -> list[str]:
    a = json.dumps(old.model_dump(mode="json"), indent=2, sort_keys=True).splitlines()
    b = json.dumps(new.model_dump(mode="json"), indent=2, sort_keys=True).splitlines()
    return list(difflib.unified_diff(a, b, lineterm="", n=1))[2:]


async def _apply(ctx: Ctx) -> str:
    """Serve the recorded versions now on this server (as SIGHUP would)."""
    path = ctx.portal.config_path
    if path is None:
        return "recorded; this server was started without a config file: it applies at start"
    applied = await ctx.root.reload(path)
    return "applied" if applied else "recorded, but the reload was refused: see the server log"


def _operator_store(ctx: Ctx) -> Any:
    require_operator(ctx.user.principal)
    if ctx.root.store is None:
        raise PermissionDenied("deployment versions need a store ('modelyard serve')")
    return ctx.root.store


async def confirm_change(ctx: Ctx, name: str, fields: list[tuple[str, str]]) -> Response:
    """The confirmation page of changing ``name``'s targets to ``fields`` (form names)."""
    _visible(ctx, name)
    given = dict(fields)
    spec, what = _edited(ctx, name, given.get)
    served = ctx.root.current.settings.deployments[name]
    return ctx.render(
        "confirm.html",
        name=name,
        action=f"/deployments/{name}/change",
        what=what,
        diff=_diff(served, spec),
        fields=fields,
    )


@page
async def change(ctx: Ctx) -> Response:
    store = _operator_store(ctx)
    name = ctx.request.path_params["name"]
    _visible(ctx, name)
    if ctx.field("confirm") != "yes":
        items = list(ctx.form.multi_items()) if ctx.form is not None else []
        fields = [(k, v) for k, v in items if k not in ("csrf", "confirm") and isinstance(v, str)]
        return await confirm_change(ctx, name, fields)
    spec, what = _edited(ctx, name, ctx.field)
    added = await versions.change(store, ctx.root.current.settings, name, spec, what)
    outcome = await _apply(ctx)
    return ctx.render("changed.html", name=name, version=added, outcome=outcome)


@page
async def rollback(ctx: Ctx) -> Response:
    store = _operator_store(ctx)
    name = ctx.request.path_params["name"]
    _visible(ctx, name)
    raw = ctx.field("version")
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidRequest(f"version: {raw!r} is not a version number", param="version")
    number = int(raw)
    if ctx.field("confirm") != "yes":
        found = {v.version: v for v in await versions.history(store, name)}
        target = found.get(number)
        if target is None:
            raise NotFound(f"deployment {name!r} has no version {number}")
        spec = versions.spec_of(target)
        served = ctx.root.current.settings.deployments[name]
        return ctx.render(
            "confirm.html",
            name=name,
            action=f"/deployments/{name}/rollback",
            what=f"rollback to version {number}",
            diff=_diff(served, spec) if spec is not None else [],
            fields=[("version", raw)],
        )
    added = await versions.rollback(store, ctx.root.current.settings, name, number)
    outcome = await _apply(ctx)
    return ctx.render("changed.html", name=name, version=added, outcome=outcome)
