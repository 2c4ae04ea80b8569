"""``StoreRecorder``: the runner's results in the database, runs' life cycle, who sees what."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelyard.core.chat import ChatRequest
from modelyard.core.errors import PermissionDenied
from modelyard.evals.recorders import CaseResult
from modelyard.evals.runner import CallOutcome, RunOptions, run_eval
from modelyard.evals.store_recorder import (
    Starter,
    StoreRecorder,
    check_storable,
    run_json,
    scope_for,
    visible,
)
from modelyard.store import Store, open_store
from modelyard.store.evals import RunFilter
from modelyard.tenancy.keys import ANONYMOUS, Principal
from tests.unit.evals.fakes import FakeCaller, arithmetic


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'evals.db'}")
    yield opened
    await opened.aclose()


class Flaky(FakeCaller):
    """Fails every call to ``down`` (a retryable error), answers the others."""

    def __init__(self, down: str) -> None:
        super().__init__()
        self.down = down

    async def __call__(self, deployment: str, request: ChatRequest) -> CallOutcome:
        if deployment == self.down:
            self.calls.append((deployment, request.messages[-1].text()))
            return CallOutcome(error="HTTP 503: overloaded")
        return await super().__call__(deployment, request)


async def test_record_is_idempotent_and_a_retried_error_is_replaced(store: Store):
    recorder = StoreRecorder(store)
    await recorder.save_run("r1", "arith", ["good"])
    done = CaseResult("q1", "good", 0, score=1.0, passed=True, output="2", cost_micros=10)
    await recorder.record("r1", done)
    await recorder.record("r1", CaseResult("q1", "good", 0, score=0.0, output="changed"))
    await recorder.record("r1", CaseResult("q2", "good", 0, error="timeout"))
    assert await recorder.completed("r1") == {("q1", "good", 0)}
    await recorder.record("r1", CaseResult("q2", "good", 0, score=1.0, passed=True, attempts=3))
    results = {r.case_id: r for r in await recorder.results("r1")}
    assert results["q1"].output == "2" and results["q1"].cost_micros == 10
    assert results["q2"].error is None and results["q2"].attempts == 3
    assert await recorder.completed("r1") == {("q1", "good", 0), ("q2", "good", 0)}


async def test_a_run_is_saved_finished_and_its_report_rebuilt(store: Store):
    recorder = StoreRecorder(store)
    run = await recorder.save_run(
        "r1", "arithmetic", ["good", "bad"], {"repeat": 1}, Starter("acme", "k1")
    )
    assert (run.status, run.project_id, run.key_id) == ("running", "acme", "k1")
    caller = FakeCaller()
    report = await run_eval(
        arithmetic(20), ["good", "bad"], caller, recorder=recorder, options=RunOptions("r1")
    )
    assert await recorder.finish_run("r1", report)
    assert not await recorder.finish_run("missing", report)
    stored = await recorder.get_run("r1")
    assert stored is not None and stored.status == "done" and stored.finished_at is not None
    assert stored.report is not None and "results" not in stored.report
    assert stored.report["best"] == "good"
    again = await recorder.get_report("r1")
    assert again is not None
    assert again.best == "good" and len(again.results) == 40
    assert again.summary("bad").score == pytest.approx(report.summary("bad").score)
    assert await recorder.get_report("missing") is None
    row = run_json(stored, 40)
    assert row["status"] == "done" and row["best"] == "good" and row["results"] == 40
    assert row["created_at"].endswith("Z")


async def test_an_interrupted_run_resumes_from_the_store_without_repeating_cases(store: Store):
    recorder = StoreRecorder(store)
    dataset = arithmetic(10)
    await recorder.save_run("r1", dataset.name, ["good", "bad"])
    first = Flaky(down="bad")
    options = RunOptions("r1", retries=0)
    await run_eval(dataset, ["good", "bad"], first, recorder=recorder, options=options)
    await recorder.finish_run("r1", None, "interrupted")
    partial = await recorder.get_report("r1")
    assert partial is not None and partial.summary("bad").errors == 10
    # A new process: a fresh recorder on the same store, the same run id.
    resumed = await StoreRecorder(store).save_run("r1", dataset.name, ["good", "bad"])
    assert resumed.status == "running" and resumed.finished_at is None
    second = FakeCaller()
    report = await run_eval(
        dataset, ["good", "bad"], second, recorder=StoreRecorder(store), options=options
    )
    # Only the failed calls were made again; the finished ones came from the store.
    assert sorted(second.calls) == sorted(("bad", f"q{i}") for i in range(10))
    assert report.summary("bad").errors == 0 and report.summary("good").calls == 10
    assert len(await recorder.results("r1")) == 20


async def test_resaving_a_run_keeps_its_origin_and_takes_the_new_options(store: Store):
    recorder = StoreRecorder(store)
    first = await recorder.save_run("r1", "arith", ["a"], {"repeat": 1}, Starter("acme", "k1"))
    await recorder.finish_run("r1", None, "interrupted")
    again = await recorder.save_run("r1", "other", ["a", "b"], {"repeat": 2})
    assert again.created_at == first.created_at and again.dataset == "arith"
    assert again.deployments == ("a", "b") and again.options == {"repeat": 2}
    assert (again.project_id, again.key_id) == ("acme", "k1")
    await recorder.save_run("r2", "arith", ["a"])
    assert [r.id for r in await recorder.list_runs()] == ["r2", "r1"]
    assert await recorder.count_runs() == 2
    assert [r.id for r in await recorder.list_runs(scope=RunFilter(project_id="acme"))] == ["r1"]


def test_scopes_follow_the_roles():
    operator = Principal(key_id="admin-env", role="operator")
    owner = Principal(key_id="k1", role="owner", project_id="acme")
    member = Principal(key_id="k2", role="member", project_id="acme")
    assert scope_for(operator) == RunFilter()
    assert scope_for(owner) == RunFilter(project_id="acme")
    assert scope_for(member) == RunFilter(project_id="acme", key_id="k2")
    with pytest.raises(PermissionDenied):
        scope_for(Principal(key_id="config-0", role="member"))
    with pytest.raises(PermissionDenied):
        scope_for(ANONYMOUS)


async def test_visibility_of_a_run(store: Store):
    recorder = StoreRecorder(store)
    run = await recorder.save_run("r1", "arith", ["a"], None, Starter("acme", "k1"))
    assert visible(run, RunFilter())
    assert visible(run, RunFilter(project_id="acme"))
    assert visible(run, RunFilter(project_id="acme", key_id="k1"))
    assert not visible(run, RunFilter(project_id="acme", key_id="k2"))
    assert not visible(run, RunFilter(project_id="other"))


def test_what_would_not_fit_is_refused_before_a_run():
    check_storable("r" * 128, "d" * 256, ["x" * 128], ["c" * 256])
    with pytest.raises(ValueError, match="run id"):
        check_storable("r" * 129, "arith", ["a"], ["q1"])
    with pytest.raises(ValueError, match="case id"):
        check_storable("r1", "arith", ["a"], ["q1", "c" * 257])
    with pytest.raises(ValueError, match="deployment"):
        check_storable("r1", "arith", ["x" * 129], ["q1"])
