"""The evaluation aggregate on SQLite and PostgreSQL: runs, idempotent results, listings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelyard.store import Store, VersionConflict
from modelyard.store.evals import EvalResult, EvalRun, EvalRuns, RunFilter

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _run(run_id: str, minutes: int = 0, **fields: object) -> EvalRun:
    values: dict[str, object] = {
        "id": run_id,
        "dataset": "arith",
        "deployments": ("good", "bad"),
        "options": {"repeat": 2, "concurrency": 4},
        "status": "running",
        "created_at": T0 + timedelta(minutes=minutes),
        **fields,
    }
    return EvalRun(**values)  # type: ignore[arg-type]


def _result(case: str, deployment: str = "good", repeat: int = 0, **fields: object) -> EvalResult:
    values: dict[str, object] = {
        "run_id": "r1",
        "case_id": case,
        "deployment": deployment,
        "repeat": repeat,
        "created_at": T0,
        **fields,
    }
    return EvalResult(**values)  # type: ignore[arg-type]


async def test_a_run_round_trips_with_its_json_and_zones(store: Store):
    async with store.transaction() as session:
        await EvalRuns(session).add(_run("r1", project_id="acme", key_id="k1"))
    async with store.transaction() as session:
        got = await EvalRuns(session).get("r1")
        missing = await EvalRuns(session).get("nope")
    assert missing is None
    assert got is not None
    assert got.deployments == ("good", "bad")
    assert got.options == {"repeat": 2, "concurrency": 4}
    assert (got.status, got.project_id, got.key_id, got.report) == ("running", "acme", "k1", None)
    assert got.created_at == T0 and got.created_at.tzinfo is not None
    assert got.finished_at is None


async def test_adding_an_existing_run_id_is_a_conflict(store: Store):
    async with store.transaction() as session:
        await EvalRuns(session).add(_run("r1"))
    with pytest.raises(VersionConflict):
        async with store.transaction() as session:
            await EvalRuns(session).add(_run("r1"))


async def test_finish_stores_status_time_and_report_and_restart_reopens(store: Store):
    report = {"best": "good", "summaries": [{"deployment": "good", "score": 0.9}]}
    async with store.transaction() as session:
        runs = EvalRuns(session)
        await runs.add(_run("r1"))
        assert await runs.finish("r1", "done", T0 + timedelta(hours=1), report)
        assert not await runs.finish("nope", "done", T0)
    async with store.transaction() as session:
        done = await EvalRuns(session).get("r1")
    assert done is not None and done.status == "done"
    assert done.finished_at == T0 + timedelta(hours=1)
    assert done.report == report
    async with store.transaction() as session:
        runs = EvalRuns(session)
        assert await runs.restart("r1", ["good"], {"repeat": 3})
        assert not await runs.restart("nope", ["good"], {})
        again = await runs.get("r1")
    assert again is not None
    assert (again.status, again.finished_at, again.deployments) == ("running", None, ("good",))
    assert again.options == {"repeat": 3} and again.report == report


async def test_recording_the_same_key_twice_keeps_a_success_and_replaces_an_error(store: Store):
    async with store.transaction() as session:
        await EvalRuns(session).add(_run("r1"))
    first = _result("q1", score=1.0, passed=True, output="4", cost_micros=1200)
    failed = _result("q2", error="HTTP 503: busy", reason="call failed")
    async with store.transaction() as session:
        runs = EvalRuns(session)
        await runs.record(first)
        await runs.record(failed)
        await runs.record(_result("q1", repeat=1, score=0.5))
    # A duplicate of a finished result is ignored, not an error, and changes nothing.
    async with store.transaction() as session:
        await EvalRuns(session).record(_result("q1", score=0.0, output="other"))
    # A later success for an errored key replaces the error.
    retried = _result(
        "q2",
        score=1.0,
        passed=True,
        output="6",
        attempts=2,
        tool_calls=[{"name": "f", "arguments": "{}"}],
    )
    async with store.transaction() as session:
        await EvalRuns(session).record(retried)
    async with store.transaction() as session:
        runs = EvalRuns(session)
        results = await runs.results("r1")
        completed = await runs.completed("r1")
        count = await runs.count_results("r1")
    by_key = {(r.case_id, r.repeat): r for r in results}
    assert count == 3 == len(results)
    assert by_key[("q1", 0)].output == "4" and by_key[("q1", 0)].score == 1.0
    assert by_key[("q1", 0)].cost_micros == 1200
    assert by_key[("q2", 0)].error is None and by_key[("q2", 0)].attempts == 2
    assert by_key[("q2", 0)].tool_calls == [{"name": "f", "arguments": "{}"}]
    assert completed == {("q1", "good", 0), ("q1", "good", 1), ("q2", "good", 0)}
    # Results keep the order they were first recorded in.
    assert [(r.case_id, r.repeat) for r in results] == [("q1", 0), ("q2", 0), ("q1", 1)]


async def test_an_errored_result_is_not_completed(store: Store):
    async with store.transaction() as session:
        runs = EvalRuns(session)
        await runs.add(_run("r1"))
        await runs.record(_result("q1", error="timeout"))
        await runs.record(_result("q1", deployment="bad"))
        assert await runs.completed("r1") == {("q1", "bad", 0)}
        assert await runs.completed("other") == set()


async def test_results_are_paginated(store: Store):
    async with store.transaction() as session:
        runs = EvalRuns(session)
        await runs.add(_run("r1"))
        for i in range(7):
            await runs.record(_result(f"q{i}"))
    async with store.transaction() as session:
        runs = EvalRuns(session)
        page = await runs.results("r1", limit=3, offset=3)
        tail = await runs.results("r1", limit=3, offset=6)
    assert [r.case_id for r in page] == ["q3", "q4", "q5"]
    assert [r.case_id for r in tail] == ["q6"]


async def test_runs_are_listed_newest_first_and_filtered(store: Store):
    async with store.transaction() as session:
        runs = EvalRuns(session)
        await runs.add(_run("old", 0, project_id="acme", key_id="k1"))
        await runs.add(_run("new", 10, project_id="acme", key_id="k2"))
        await runs.add(_run("mid", 5))
        await runs.record(EvalResult("new", "q1", "good", 0, created_at=T0))
        await runs.record(EvalResult("new", "q2", "good", 0, created_at=T0))
    async with store.transaction() as session:
        runs = EvalRuns(session)
        every = await runs.runs()
        second = await runs.runs(limit=1, offset=1)
        acme = await runs.runs(RunFilter(project_id="acme"))
        mine = await runs.runs(RunFilter(project_id="acme", key_id="k1"))
        counts = await runs.result_counts(["new", "old"])
        total, in_acme = await runs.count(), await runs.count(RunFilter(project_id="acme"))
        none = await runs.result_counts([])
    assert [r.id for r in every] == ["new", "mid", "old"]
    assert [r.id for r in second] == ["mid"]
    assert [r.id for r in acme] == ["new", "old"]
    assert [r.id for r in mine] == ["old"]
    assert counts == {"new": 2} and none == {}
    assert (total, in_acme) == (3, 2)
