import asyncio

import pytest

from modelyard.core.chat import ChatRequest
from modelyard.evals.recorders import CaseResult, JsonlRecorder, MemoryRecorder
from modelyard.evals.runner import CallOutcome, RunOptions, run_eval
from tests.unit.evals.fakes import FakeCaller, arithmetic


async def test_known_quality_ranks_and_calls_significance():
    caller = FakeCaller()
    progress: list[tuple[str, int, int]] = []
    report = await run_eval(
        arithmetic(),
        ["bad", "good-cheap", "good"],
        caller,
        recorder=MemoryRecorder(),
        options=RunOptions(run_id="r1", concurrency=3),
        progress=lambda d, done, total: progress.append((d, done, total)),
    )
    assert len(caller.calls) == 120
    assert report.best == "good"
    good, cheap, bad = (report.summary(d) for d in ("good", "good-cheap", "bad"))
    assert (good.score, cheap.score, bad.score) == (0.9, 0.8, 0.4)
    assert good.pass_rate == 0.9 and good.calls == 40 and good.errors == 0
    assert good.score_low < 0.9 < good.score_high
    assert good.cost_per_1k_micros == 1_000_000 and bad.cost_per_1k_micros == 300_000
    assert good.latency_p50_s == pytest.approx(0.3)
    versus = {c.deployment: c for c in report.comparisons}
    assert versus["bad"].significant and versus["bad"].method == "mcnemar_exact"
    assert versus["bad"].p_value < 0.001
    assert not versus["good-cheap"].significant
    assert versus["good-cheap"].p_value == pytest.approx(0.125)  # 4 discordant pairs, all one way
    assert report.recommendation == (
        "Deployment good-cheap scores within the margin of good (0.80 vs 0.90) at 62 % lower cost."
    )
    assert ("good", 40, 40) in progress and ("bad", 0, 40) in progress


async def test_repeat_runs_every_case_n_times_and_averages_per_case():
    caller = FakeCaller()
    report = await run_eval(
        arithmetic(10),
        ["good", "bad"],
        caller,
        recorder=MemoryRecorder(),
        options=RunOptions(repeat=3),
    )
    assert len(caller.calls) == 60
    assert report.summary("good").calls == 30 and report.summary("good").cases == 10
    assert report.repeat == 3


async def test_interrupted_run_resumes_without_repeating_finished_cases(tmp_path):
    recorder = JsonlRecorder(tmp_path / "run.jsonl")
    dataset = arithmetic(20)
    stop = asyncio.Event()
    first = FakeCaller()

    async def interrupted(deployment: str, request: ChatRequest) -> CallOutcome:
        if len(first.calls) >= 15:
            stop.set()
            await asyncio.sleep(3600)
        return await first(deployment, request)

    task = asyncio.create_task(
        run_eval(
            dataset,
            ["good", "bad"],
            interrupted,
            recorder=recorder,
            options=RunOptions(run_id="resume-me", concurrency=2),
        )
    )
    await stop.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    done_first = await recorder.completed("resume-me")
    assert 10 <= len(done_first) <= 15

    second = FakeCaller()
    report = await run_eval(
        dataset,
        ["good", "bad"],
        second,
        recorder=JsonlRecorder(tmp_path / "run.jsonl"),
        options=RunOptions(run_id="resume-me", concurrency=2),
    )
    redone = {(case, dep, 0) for dep, case in second.calls}
    assert not redone & done_first
    assert len(second.calls) == 40 - len(done_first)
    assert sorted(r.key for r in report.results) == sorted(
        (f"q{i}", d, 0) for i in range(20) for d in ("good", "bad")
    )
    assert report.summary("good").score == 0.9


async def test_retries_with_backoff_then_records_errors_that_resumption_retries():
    attempts: dict[str, int] = {}

    async def flaky(deployment: str, request: ChatRequest) -> CallOutcome:
        key = request.messages[-1].text()
        attempts[key] = attempts.get(key, 0) + 1
        if "0 + 0" in key:
            return CallOutcome(error="HTTP 400: bad", retryable=False)
        if "1 + 1" in key:
            return CallOutcome(error="HTTP 503: busy")
        if attempts[key] < 3:
            raise OSError("connection reset")
        return CallOutcome(text="2" if "1 + 1" in key else "4")

    recorder = MemoryRecorder()
    dataset = arithmetic(3)
    options = RunOptions(run_id="r", retries=2, backoff_s=0.001)
    report = await run_eval(dataset, ["d"], flaky, recorder=recorder, options=options)
    assert attempts == {"What is 0 + 0?": 1, "What is 1 + 1?": 3, "What is 2 + 2?": 3}
    by_case = {r.case_id: r for r in report.results}
    assert by_case["q0"].error == "HTTP 400: bad" and by_case["q0"].attempts == 1
    assert by_case["q1"].error == "HTTP 503: busy" and by_case["q1"].score == 0.0
    assert by_case["q2"].error is None and by_case["q2"].passed and by_case["q2"].attempts == 3
    assert report.summary("d").errors == 2
    assert await recorder.completed("r") == {("q2", "d", 0)}
    # Resuming retries only the failed ones.
    attempts.clear()
    await run_eval(dataset, ["d"], flaky, recorder=recorder, options=options)
    assert set(attempts) == {"What is 0 + 0?", "What is 1 + 1?"}


async def test_grader_failures_are_recorded_as_errors():
    async def caller(deployment: str, request: ChatRequest) -> CallOutcome:
        return CallOutcome(text="x")

    from modelyard.evals.datasets import parse_dataset

    dataset = parse_dataset('{"input": "q", "regex": "("}', name="bad-regex")
    report = await run_eval(dataset, ["d"], caller, recorder=MemoryRecorder())
    assert report.results[0].error is not None and "regex" in report.results[0].error


async def test_run_checks_graders_before_calling():
    from modelyard.evals.datasets import parse_dataset
    from modelyard.evals.graders import GraderError

    caller = FakeCaller()
    dataset = parse_dataset('{"input": "q", "rubric": "be good"}', name="judged")
    with pytest.raises(GraderError, match="needs a judge"):
        await run_eval(dataset, ["good"], caller, recorder=MemoryRecorder())
    assert caller.calls == []


async def test_jsonl_recorder_survives_a_torn_line_and_keeps_the_latest(tmp_path):
    path = tmp_path / "r.jsonl"
    recorder = JsonlRecorder(path)
    await recorder.record("a", CaseResult("c1", "d", 0, error="boom"))
    with path.open("ab") as out:
        out.write(b'{"run_id": "a", "case_id": "c2"')  # a crash mid-write
    await recorder.record("a", CaseResult("c1", "d", 0, score=1.0, passed=True))
    await recorder.record("b", CaseResult("c9", "d", 0))
    results = await JsonlRecorder(path).results("a")
    assert [(r.case_id, r.passed) for r in results] == [("c1", True)]
    assert await recorder.completed("a") == {("c1", "d", 0)}
    assert await recorder.completed("b") == {("c9", "d", 0)}
