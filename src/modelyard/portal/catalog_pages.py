"""The catalog: every model Modelyard knows, searchable and filterable, with the deployments
that use it; a model's page with its facts."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from modelyard.catalog import CAPABILITIES, ModelInfo, shipped_models
from modelyard.core.errors import InvalidRequest, NotFound
from modelyard.portal.web import Ctx, page
from modelyard.services.gateway import Gateway
from modelyard.services.models import prices_json

SHOWN = 200  # rows on one page of results; a narrower search shows the rest
MAX_QUERY = 200


def load_listing() -> None:
    """Build the shipped listing these pages search now (blocking: the portal's build thread
    calls it). A gateway whose providers have no list prices has not parsed genai-prices'
    data (``catalog/loader.py``); the catalog page's first request must not, on the loop."""
    shipped_models()


def _uses(gateway: Gateway, allowed: frozenset[str] | None) -> dict[tuple[str, str], list[str]]:
    """(vendor, catalog id) -> the deployments (the caller may call) with a target on it."""
    found: dict[tuple[str, str], list[str]] = {}
    table = gateway.table
    for name in sorted(table.names):
        if allowed is not None and name not in allowed:
            continue
        for target in table.resolve(name).targets:
            provider = gateway.providers.get(target.provider)
            kind = provider.settings.type if provider is not None else ""
            info = gateway.catalog.lookup(kind, target.model)
            if info is not None:
                users = found.setdefault((info.vendor, info.id), [])
                if name not in users:
                    users.append(name)
    return found


def _row(info: ModelInfo, uses: dict[tuple[str, str], list[str]]) -> dict[str, Any]:
    prices = prices_json(info.list_prices())
    return {
        "info": info,
        "prices": prices or {},
        "deployments": uses.get((info.vendor, info.id), []),
        "capabilities": [c for c in CAPABILITIES if info.capability(c) is True],
    }


@page
async def catalog(ctx: Ctx) -> Response:
    text = ctx.field("q")[:MAX_QUERY] or None
    vendor = ctx.field("vendor")[:MAX_QUERY] or None
    capability = ctx.field("capability") or None
    if capability is not None and capability not in CAPABILITIES:
        raise InvalidRequest(
            f"capability: {capability!r} is not one of {', '.join(CAPABILITIES)}",
            param="capability",
        )
    gateway = ctx.root.current.gateway
    found = gateway.catalog.search(vendor, capability, text=text)
    uses = _uses(gateway, ctx.user.principal.deployments)
    if ctx.field("used") == "1":
        found = [m for m in found if (m.vendor, m.id) in uses]
    rows = [_row(m, uses) for m in found[:SHOWN]]
    vendors = sorted({m.vendor for m in gateway.catalog.search()})
    values: dict[str, Any] = {
        "rows": rows,
        "total": len(found),
        "shown": len(rows),
        "q": text or "",
        "vendor": vendor or "",
        "vendors": vendors,
        "capability": capability or "",
        "capabilities": CAPABILITIES,
        "used": ctx.field("used") == "1",
    }
    if ctx.request.headers.get("hx-request"):  # the search box refreshes the table only
        return ctx.render("catalog_rows.html", **values)
    return ctx.render("catalog.html", **values)


@page
async def model(ctx: Ctx) -> Response:
    model_id, vendor = ctx.field("id")[:MAX_QUERY], ctx.field("vendor")[:MAX_QUERY]
    gateway = ctx.root.current.gateway
    found = [
        m
        for m in gateway.catalog.search(text=model_id or None)
        if m.id == model_id and (not vendor or m.vendor == vendor)
    ]
    if not found:
        raise NotFound(f"no model {model_id!r} in the catalog", code="model_not_found")
    uses = _uses(gateway, ctx.user.principal.deployments)
    return ctx.render("model.html", rows=[_row(m, uses) for m in found], model_id=model_id)
