"""Shadow comparisons (operator: the pairs hold real requests and answers): per deployment with
shadow traffic, the primary and the candidate side by side over the last 7 days, and the
newest pairs of one deployment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.responses import Response

from modelyard.core.errors import PermissionDenied
from modelyard.portal.web import Ctx, page
from modelyard.services.tenancy import require_operator
from modelyard.store.shadow_summary import newest_pairs, shadow_totals

WINDOW = timedelta(days=7)
PAIRS_SHOWN = 20


@page
async def shadows(ctx: Ctx) -> Response:
    require_operator(ctx.user.principal)
    store = ctx.root.store
    if store is None:
        raise PermissionDenied("shadow comparisons need a store ('modelyard serve')")
    name = ctx.field("deployment")[:128]
    async with store.transaction() as session:
        totals = await shadow_totals(session, datetime.now(UTC) - WINDOW)
        pairs = await newest_pairs(session, name, PAIRS_SHOWN) if name else []
    return ctx.render("shadows.html", totals=totals, pairs=pairs[::-1], deployment=name)
