"""Evaluation runs in the database (the same store as the usage ledger).

``StoreRecorder`` is the ``Recorder`` the CLI uses: every graded call becomes an ``eval_results``
row as soon as it exists, so an interrupted run resumes from the store without repeating
finished cases. Recording is idempotent: a second result for a (run, case, deployment, repeat)
that already finished is ignored; one for a key whose stored result is an error replaces it
(the failed call was tried again). A run's row carries its dataset, deployments and options,
its status (``running``, ``done``, ``interrupted``), who started it when known, and, once done,
its report (the per-case results are the rows, not a copy inside the report).

``scope_for`` says which runs a caller may read: the operator every run; a project owner the
runs started with keys of its project; a member the runs started with its own key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelyard.core.errors import PermissionDenied
from modelyard.evals.recorders import CaseResult, Key
from modelyard.evals.report import RunReport, build_report
from modelyard.store import Store, VersionConflict
from modelyard.store.evals import (
    MAX_CASE_ID,
    MAX_DATASET,
    MAX_DEPLOYMENT,
    MAX_RUN_ID,
    EvalResult,
    EvalRun,
    EvalRuns,
    RunFilter,
    RunStatus,
)
from modelyard.tenancy.keys import Principal


@dataclass(frozen=True, slots=True)
class Starter:
    """Who started a run: the project and key its calls were made with (None: unknown)."""

    project_id: str | None = None
    key_id: str | None = None


def to_case_result(row: EvalResult) -> CaseResult:
    return CaseResult(
        case_id=row.case_id,
        deployment=row.deployment,
        repeat=row.repeat,
        score=row.score,
        passed=row.passed,
        reason=row.reason,
        output=row.output,
        tool_calls=list(row.tool_calls),
        latency_s=row.latency_s,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost_micros=row.cost_micros,
        error=row.error,
        attempts=row.attempts,
        refused=row.refused,
    )


def to_row(run_id: str, result: CaseResult, at: datetime) -> EvalResult:
    return EvalResult(
        run_id=run_id,
        case_id=result.case_id,
        deployment=result.deployment,
        repeat=result.repeat,
        score=float(result.score),
        passed=bool(result.passed),
        reason=result.reason,
        output=result.output,
        tool_calls=[dict(c) for c in result.tool_calls],
        error=result.error,
        latency_s=float(result.latency_s),
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cost_micros=result.cost_micros,
        attempts=result.attempts,
        created_at=at,
        refused=result.refused,
    )


def check_storable(
    run_id: str, dataset: str, deployments: Sequence[str], cases: Sequence[str]
) -> None:
    """Raise ``ValueError`` naming what is too long to store, before a run starts."""
    limits = [("run id", [run_id], MAX_RUN_ID), ("dataset name", [dataset], MAX_DATASET)]
    limits += [
        ("deployment", list(deployments), MAX_DEPLOYMENT),
        ("case id", list(cases), MAX_CASE_ID),
    ]
    for what, values, most in limits:
        for value in values:
            if len(value) > most:
                raise ValueError(f"{what} {value[:40]!r}... is longer than {most} characters")


def scope_for(principal: Principal) -> RunFilter:
    """The runs ``principal`` may read (raises ``PermissionDenied`` when it may read none)."""
    if principal.anonymous:
        raise PermissionDenied("evaluation runs need an API key", code="operator_only")
    if principal.role == "operator":
        return RunFilter()
    if principal.project_id is None:
        raise PermissionDenied("this key belongs to no project", code="operator_only")
    if principal.role == "owner":
        return RunFilter(project_id=principal.project_id)
    return RunFilter(project_id=principal.project_id, key_id=principal.key_id)


def visible(run: EvalRun, scope: RunFilter) -> bool:
    if scope.project_id is not None and run.project_id != scope.project_id:
        return False
    return scope.key_id is None or run.key_id == scope.key_id


def report_dict(report: RunReport) -> dict[str, Any]:
    """The report as stored on the run: everything but the per-case results."""
    data = report.to_dict()
    data.pop("results", None)
    return data


class StoreRecorder:
    """A ``Recorder`` on ``eval_runs``/``eval_results``, plus the run's own life cycle."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- the Recorder protocol -------------------------------------------------------------

    async def completed(self, run_id: str) -> set[Key]:
        async with self.store.transaction() as session:
            return await EvalRuns(session).completed(run_id)

    async def record(self, run_id: str, result: CaseResult) -> None:
        row = to_row(run_id, result, datetime.now(UTC))
        async with self.store.transaction() as session:
            await EvalRuns(session).record(row)

    async def results(self, run_id: str) -> list[CaseResult]:
        async with self.store.transaction() as session:
            rows = await EvalRuns(session).results(run_id)
        return [to_case_result(r) for r in rows]

    # --- runs ------------------------------------------------------------------------------

    async def save_run(
        self,
        run_id: str,
        dataset: str,
        deployments: Sequence[str],
        options: Mapping[str, Any] | None = None,
        starter: Starter | None = None,
    ) -> EvalRun:
        """Create the run, or mark an existing one (being resumed) as running again.

        Resuming keeps the original dataset, creation time and starter; the deployments and
        options become those of this invocation."""
        opts = dict(options or {})
        who = starter or Starter()
        async with self.store.transaction() as session:
            runs = EvalRuns(session)
            if await runs.restart(run_id, deployments, opts):
                found = await runs.get(run_id)
                assert found is not None
                return found
        new = EvalRun(
            id=run_id,
            dataset=dataset,
            deployments=tuple(deployments),
            options=opts,
            status="running",
            created_at=datetime.now(UTC),
            project_id=who.project_id,
            key_id=who.key_id,
        )
        try:
            async with self.store.transaction() as session:
                await EvalRuns(session).add(new)
        except VersionConflict:
            # Another process created the same run id between our two units of work.
            return await self.save_run(run_id, dataset, deployments, opts, starter)
        return new

    async def finish_run(
        self, run_id: str, report: RunReport | None = None, status: RunStatus = "done"
    ) -> bool:
        """Record how the run ended, and its report; False when the run does not exist."""
        stored = report_dict(report) if report is not None else None
        async with self.store.transaction() as session:
            return await EvalRuns(session).finish(run_id, status, datetime.now(UTC), stored)

    async def list_runs(
        self, limit: int = 50, offset: int = 0, scope: RunFilter | None = None
    ) -> list[EvalRun]:
        """Runs, newest first."""
        async with self.store.transaction() as session:
            return await EvalRuns(session).runs(scope, limit=limit, offset=offset)

    async def count_runs(self, scope: RunFilter | None = None) -> int:
        async with self.store.transaction() as session:
            return await EvalRuns(session).count(scope)

    async def result_counts(self, run_ids: Sequence[str]) -> dict[str, int]:
        async with self.store.transaction() as session:
            return await EvalRuns(session).result_counts(run_ids)

    async def get_run(self, run_id: str) -> EvalRun | None:
        async with self.store.transaction() as session:
            return await EvalRuns(session).get(run_id)

    async def page(self, run_id: str, limit: int, offset: int = 0) -> tuple[list[CaseResult], int]:
        """One page of a run's results (in recording order) and the total number."""
        async with self.store.transaction() as session:
            runs = EvalRuns(session)
            rows = await runs.results(run_id, limit=limit, offset=offset)
            total = await runs.count_results(run_id)
        return [to_case_result(r) for r in rows], total

    async def report(self, run: EvalRun, *, with_results: bool = True) -> RunReport:
        """The run's report: the stored one once done, else built from the results so far
        (an interrupted or running run shows its partial comparison)."""
        results = await self.results(run.id) if with_results or run.report is None else []
        if run.report is not None:
            report = RunReport.from_dict({**run.report, "results": []})
            report.results = results
            return report
        repeat = int(run.options.get("repeat", 1) or 1)
        return build_report(run.id, run.dataset, list(run.deployments), results, repeat=repeat)

    async def get_report(self, run_id: str) -> RunReport | None:
        """A run's report with every per-case result; None when there is no such run."""
        run = await self.get_run(run_id)
        return await self.report(run) if run is not None else None


def _stamp(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def run_json(run: EvalRun, results: int | None = None) -> dict[str, Any]:
    """A run as the CLI's ``--json`` and the admin API show it (without its report)."""
    report = run.report or {}
    return {
        "object": "eval_run",
        "id": run.id,
        "dataset": run.dataset,
        "deployments": list(run.deployments),
        "options": run.options,
        "status": run.status,
        "project": run.project_id,
        "key_id": run.key_id,
        "created_at": _stamp(run.created_at),
        "finished_at": _stamp(run.finished_at),
        "results": results,
        "best": report.get("best"),
        "recommendation": report.get("recommendation"),
    }
