"""Evaluation runs in the admin API: ``GET /admin/v1/evals/runs`` and ``.../runs/{id}``.

Read-only views of what ``modelyard eval run`` stored. Who sees what (``scope_for``): the
operator every run; a project owner the runs started with its project's keys; a member the runs
started with its own key. A run outside the caller's scope answers 404, like one that does not
exist. Errors use the OpenAI error shape; a server without a store answers 503.
``EVAL_OPERATIONS`` describes both routes (their paging parameters and answers as models) for
the admin API's generated OpenAPI document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Route

from modelyard.core.errors import ModelyardError, NotFound
from modelyard.evals.recorders import CaseResult
from modelyard.evals.store_recorder import (
    StoreRecorder,
    report_dict,
    run_json,
    scope_for,
    visible,
)
from modelyard.server.admin_http import Call, endpoint
from modelyard.server.admin_openapi import Operation
from modelyard.services.admin_fields import Count
from modelyard.services.admin_models import Query

PREFIX = "/admin/v1/evals"
# Any database can skip this many rows (SQLite's integers are 64-bit; no listing is longer).
MAX_OFFSET = 1_000_000_000


class EvalsUnavailable(ModelyardError):
    status = 503


class RunsPage(Query):
    limit: Count = Field(20, ge=1, le=200, description="page size")
    offset: Count = Field(0, ge=0, le=MAX_OFFSET, description="items to skip")


class ResultsPage(Query):
    limit: Count = Field(100, ge=1, le=1000, description="page size")
    offset: Count = Field(0, ge=0, le=MAX_OFFSET, description="items to skip")


class RunPath(Query):
    run_id: str = Field(description="the run id")


class _Shown(BaseModel):
    # Built from the dicts ``evals`` renders: a key the model does not know is a bug to catch
    # in the tests, not a field to drop silently.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class _RunFields(_Shown):
    object: Literal["eval_run"] = "eval_run"
    id: str
    dataset: str
    deployments: list[str]
    options: dict[str, Any]
    status: Literal["running", "done", "interrupted"]
    project: str | None
    key_id: str | None
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    finished_at: str | None = Field(json_schema_extra={"format": "date-time"})
    best: str | None
    recommendation: str | None


class EvalRun(_RunFields):
    results: int | None = Field(description="number of per-case results stored")


class _Page(_Shown):
    object: Literal["list"] = "list"
    total: int
    limit: int
    offset: int
    has_more: bool


class EvalRunList(_Page):
    data: list[EvalRun]


class EvalResultList(_Page):
    data: list[CaseResult]


class EvalRunDetail(_RunFields):
    report: dict[str, Any] = Field(description="summaries, comparisons, best, recommendation")
    results: EvalResultList


def _recorder(call: Call) -> StoreRecorder:
    if call.state.store is None:
        raise EvalsUnavailable(
            "this server has no store: evaluation runs need one (start it with 'modelyard serve')",
            code="no_store",
        )
    return StoreRecorder(call.state.store)


async def list_runs(call: Call) -> EvalRunList:
    recorder = _recorder(call)
    page = call.given(RunsPage)
    scope = scope_for(call.principal)
    runs = await recorder.list_runs(page.limit, page.offset, scope)
    total = await recorder.count_runs(scope)
    counts = await recorder.result_counts([r.id for r in runs])
    return EvalRunList(
        data=[EvalRun.model_validate(run_json(r, counts.get(r.id, 0))) for r in runs],
        total=total,
        limit=page.limit,
        offset=page.offset,
        has_more=page.offset + len(runs) < total,
    )


async def get_run(call: Call) -> EvalRunDetail:
    recorder = _recorder(call)
    page = call.given(ResultsPage)
    run_id = call.given(RunPath).run_id
    run = await recorder.get_run(run_id)
    if run is None or not visible(run, scope_for(call.principal)):
        raise NotFound(f"no evaluation run {run_id!r}", code="eval_run_not_found")
    # A finished run's report is stored; a running or interrupted one's is built from the
    # results so far (the whole report, whichever page of results is asked for).
    report = await recorder.report(run, with_results=False)
    results, total = await recorder.page(run_id, page.limit, page.offset)
    listing = EvalResultList(
        data=results,
        total=total,
        limit=page.limit,
        offset=page.offset,
        has_more=page.offset + len(results) < total,
    )
    shown = {**run_json(run, total), "report": report_dict(report), "results": listing}
    return EvalRunDetail.model_validate(shown)


_ERRORS = (400, 401, 403, 503)
EVAL_OPERATIONS = (
    Operation(
        "GET",
        "/evals/runs",
        "List evaluation runs, newest first (the operator sees every run; an owner its "
        "project's; a member its key's)",
        list_runs,
        answer=(200, EvalRunList, "a page of runs"),
        errors=_ERRORS,
        query=RunsPage,
    ),
    Operation(
        "GET",
        "/evals/runs/{run_id}",
        "One evaluation run: its report and a page of its per-case results",
        get_run,
        answer=(200, EvalRunDetail, "the run"),
        errors=(*_ERRORS, 404),
        query=ResultsPage,
        path_params=RunPath,
    ),
)
ROUTES = [Route(f"/admin/v1{op.path}", endpoint(op), methods=[op.method]) for op in EVAL_OPERATIONS]
