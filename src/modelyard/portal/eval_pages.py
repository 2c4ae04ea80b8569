"""Evaluations: the runs ``modelyard eval run`` stored, with a live progress bar for running
ones; a run's side-by-side report (scores with confidence intervals and the significance the
eval engine computed); per-case drill-down with every deployment's answer and the grader's
verdict; the full standalone report; and "re-point a deployment to the winner", which leads to
the same confirmation and versioned change as the deployment page.

Who sees which run is the admin API's rule (``evals.store_recorder.scope_for``): a run outside
the caller's scope is not found, like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.responses import HTMLResponse, Response

from modelyard.core.errors import InvalidRequest, NotFound, PermissionDenied
from modelyard.evals.html import render_html
from modelyard.evals.recorders import CaseResult
from modelyard.evals.store_recorder import StoreRecorder, scope_for, visible
from modelyard.portal.charts import bar_chart
from modelyard.portal.deployment_pages import confirm_change
from modelyard.portal.web import Ctx, page
from modelyard.services.tenancy import require_operator
from modelyard.store.evals import EvalRun

RUNS_SHOWN = 50
CASES_SHOWN = 25  # cases per page of the drill-down
MAX_OFFSET = 1_000_000


def _recorder(ctx: Ctx) -> StoreRecorder:
    if ctx.root.store is None:
        raise PermissionDenied("evaluation runs need a store ('modelyard serve')")
    return StoreRecorder(ctx.root.store)


def progress(run: EvalRun, done: int) -> dict[str, Any]:
    """How far a run is: results recorded of results expected (None: not known)."""
    cases = run.options.get("cases")
    repeat = int(run.options.get("repeat", 1) or 1)
    total = cases * repeat * len(run.deployments) if isinstance(cases, int) else None
    share = min(1.0, done / total) if total else None
    return {"run": run, "done": done, "total": total, "share": share}


async def _run(ctx: Ctx, recorder: StoreRecorder) -> EvalRun:
    run_id = ctx.request.path_params["run_id"][:128]
    run = await recorder.get_run(run_id)
    if run is None or not visible(run, scope_for(ctx.user.principal)):
        raise NotFound(f"no evaluation run {run_id!r}", code="eval_run_not_found")
    return run


@page
async def runs(ctx: Ctx) -> Response:
    recorder = _recorder(ctx)
    scope = scope_for(ctx.user.principal)
    found = await recorder.list_runs(RUNS_SHOWN, 0, scope)
    counts = await recorder.result_counts([r.id for r in found])
    rows = [progress(r, counts.get(r.id, 0)) for r in found]
    return ctx.render("evals.html", rows=rows, total=await recorder.count_runs(scope))


@page
async def run_progress(ctx: Ctx) -> Response:
    """One run's progress bar (polled by HTMX while the run is running)."""
    recorder = _recorder(ctx)
    run = await _run(ctx, recorder)
    counts = await recorder.result_counts([run.id])
    return ctx.render("_progress.html", p=progress(run, counts.get(run.id, 0)))


def _by_case(results: Iterable[CaseResult]) -> list[tuple[str, dict[str, CaseResult]]]:
    grouped: dict[str, dict[str, CaseResult]] = {}
    for r in results:
        if r.repeat == 0:
            grouped.setdefault(r.case_id, {})[r.deployment] = r
    return list(grouped.items())


@page
async def run_page(ctx: Ctx) -> Response:
    recorder = _recorder(ctx)
    run = await _run(ctx, recorder)
    report = await recorder.report(run, with_results=False)
    raw = ctx.field("offset") or "0"
    if not raw.isdigit() or int(raw) > MAX_OFFSET:
        raise InvalidRequest(f"offset: {raw[:20]!r} is not a count", param="offset")
    offset = int(raw)
    per_page = CASES_SHOWN * len(run.deployments) * int(run.options.get("repeat", 1) or 1)
    results, total = await recorder.page(run.id, per_page, offset)
    scores = bar_chart("Score", [(s.deployment, s.score) for s in report.summaries], _score)
    gateway = ctx.root.current.gateway
    return ctx.render(
        "eval_run.html",
        run=run,
        report=report,
        versus={c.deployment: c for c in report.comparisons},
        chart=scores,
        cases=_by_case(results),
        offset=offset,
        next_offset=offset + per_page if offset + per_page < total else None,
        results=total,
        p=progress(run, total),
        winner_live=report.best is not None and report.best in gateway.table.names,
        deployments=sorted(gateway.table.names),
    )


def _score(value: float) -> str:
    return f"{value:.3f}"


@page
async def full_report(ctx: Ctx) -> Response:
    """The standalone HTML report ``modelyard eval run`` writes, for this run."""
    recorder = _recorder(ctx)
    run = await _run(ctx, recorder)
    report = await recorder.report(run)
    return HTMLResponse(render_html(report), headers={"cache-control": "no-store"})


@page
async def repoint_to_winner(ctx: Ctx) -> Response:
    """The confirmation of re-pointing a deployment's first target to the winner's model;
    confirming it is the deployment page's change (the same versioned change)."""
    require_operator(ctx.user.principal)
    recorder = _recorder(ctx)
    run = await _run(ctx, recorder)
    report = await recorder.report(run, with_results=False)
    table = ctx.root.current.gateway.table
    if report.best is None or report.best not in table.names:
        raise InvalidRequest("this run has no winner this server still serves")
    name = ctx.field("deployment")
    if name not in table.names:
        raise NotFound(f"no deployment {name[:128]!r}", code="deployment_not_found")
    winner = table.resolve(report.best).targets[0]
    fields = [("provider_0", winner.provider), ("model_0", winner.model)]
    return await confirm_change(ctx, name, fields)  # the deployment page's confirmation
