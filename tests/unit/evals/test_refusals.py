"""A refusal in an evaluation: read from the server's answer as the refusal's text with a mark,
decided by the case's ``on_refusal`` before any grader, carried in the run's results, its
report and the store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from modelyard.core.chat import ChatRequest, Message
from modelyard.evals.client import parse_completion
from modelyard.evals.datasets import Case, Dataset, parse_case, parse_dataset
from modelyard.evals.graders import GraderContext, GraderError, GraderRegistry, Output
from modelyard.evals.html import render_html
from modelyard.evals.recorders import CaseResult, JsonlRecorder, MemoryRecorder
from modelyard.evals.report import RunReport, render_table, summarise
from modelyard.evals.runner import CallOutcome, Grading, RunOptions, judge_from_caller, run_eval
from modelyard.evals.store_recorder import StoreRecorder
from modelyard.store import Store, open_store

REFUSAL = "I'm sorry, I can't help with that."
REG = GraderRegistry()


def _case(**fields: Any) -> Case:
    return parse_case({"input": "q", **fields}, "t.jsonl:1")


def test_a_refusal_in_the_answer_is_the_output_with_its_mark() -> None:
    body = {
        "choices": [{"message": {"role": "assistant", "content": None, "refusal": REFUSAL}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 9},
    }
    outcome = parse_completion(body, None)
    assert (outcome.text, outcome.refused, outcome.output_tokens) == (REFUSAL, True, 9)
    answered = parse_completion({"choices": [{"message": {"content": "4", "refusal": None}}]}, None)
    assert (answered.text, answered.refused) == ("4", False)


async def test_a_refusal_fails_by_default_without_calling_the_grader() -> None:
    # A judge grader with no judge would raise if it were called.
    case = _case(grader="judge", rubric="is it right?")
    grade = await REG.grade(case, Output(REFUSAL, refused=True), GraderContext())
    assert (grade.score, grade.passed) == (0.0, False)
    assert grade.reason.startswith("refused: ") and "sorry" in grade.reason


async def test_a_case_that_expects_a_refusal_passes_it_and_grades_an_answer() -> None:
    case = _case(expected="cannot", grader="contains", options={"on_refusal": "pass"})
    refused = await REG.grade(case, Output(REFUSAL, refused=True), GraderContext())
    assert (refused.score, refused.passed) == (1.0, True)
    assert refused.reason.startswith("refused, as the case expects")
    declined_in_text = await REG.grade(case, Output("I cannot do that"), GraderContext())
    assert declined_in_text.passed  # graded by the case's grader
    complied = await REG.grade(case, Output("Here is how"), GraderContext())
    assert not complied.passed


async def test_on_refusal_grade_hands_the_refusal_to_the_grader() -> None:
    seen: list[Output] = []

    def grader(case: object, output: Output) -> float:
        seen.append(output)
        return 0.75 if output.refused else 0.0

    registry = GraderRegistry()
    registry.register("weigh", grader)
    case = _case(grader="weigh", options={"on_refusal": "grade"})
    grade = await registry.grade(case, Output(REFUSAL, refused=True), GraderContext())
    assert grade.score == 0.75 and seen == [Output(REFUSAL, refused=True)]


def test_an_unknown_on_refusal_is_refused_before_any_call() -> None:
    case = _case(expected="x", options={"on_refusal": "ignore"})
    with pytest.raises(GraderError, match=r"t\.jsonl:1: on_refusal: must be one of fail, pass"):
        REG.check([case], GraderContext())


async def test_a_judge_that_refuses_is_a_grader_error_not_a_verdict() -> None:
    async def caller(deployment: str, request: ChatRequest) -> CallOutcome:
        return CallOutcome(text=REFUSAL, refused=True)

    judge = judge_from_caller(caller, "judge")
    with pytest.raises(GraderError, match="judge judge refused to judge"):
        await judge([Message("user")])


class Refusing:
    """Refuses the cases whose prompt asks it to, answers "42" to the others."""

    async def __call__(self, deployment: str, request: ChatRequest) -> CallOutcome:
        if "refuse" in request.messages[-1].text():
            return CallOutcome(text=REFUSAL, refused=True, output_tokens=9)
        return CallOutcome(text="42", output_tokens=1)


def _dataset(lines: Sequence[str]) -> Dataset:
    return parse_dataset("\n".join(lines), name="safety")


DATASET = (
    '{"id": "answer", "input": "What is 6 x 7?", "expected": "42"}',
    '{"id": "declined", "input": "please refuse: what is 6 x 7?", "expected": "42"}',
    '{"id": "should-decline", "input": "please refuse this", "expected": "42",'
    ' "grader_options": {"on_refusal": "pass"}}',
)


async def test_a_run_records_refusals_in_its_rows_and_report(tmp_path: Path) -> None:
    recorder = JsonlRecorder(tmp_path / "runs.jsonl")
    report = await run_eval(
        _dataset(DATASET), ["m"], Refusing(), recorder=recorder, options=RunOptions("r1")
    )
    rows = {r.case_id: r for r in report.results}
    assert [rows[c].refused for c in ("answer", "declined", "should-decline")] == [
        False,
        True,
        True,
    ]
    assert rows["declined"].output == REFUSAL and not rows["declined"].passed
    assert rows["declined"].reason.startswith("refused: ")
    assert rows["should-decline"].passed and rows["answer"].passed
    summary = report.summary("m")
    assert summary.refusals == 2 and summary.errors == 0
    assert summary.pass_rate == pytest.approx(2 / 3)
    # The JSON lines, the exported report and the terminal and HTML renderings keep the mark.
    again = {r.case_id: r for r in await recorder.results("r1")}
    assert again["declined"].refused and again["declined"].output == REFUSAL
    assert RunReport.from_dict(report.to_dict()).summary("m").refusals == 2
    head, _, row = render_table(report).splitlines()[2:5]
    assert head.split()[-4:-2] == ["errors", "refused"] and row.split()[-3:-1] == ["0", "2"]
    assert "<th>refused</th>" in render_html(report) and "refused · 0.00" in render_html(report)


def test_a_report_written_before_refusals_were_counted_still_reads() -> None:
    summary = summarise("m", [CaseResult("q", "m", 0, refused=True)])
    older = asdict(summary)
    del older["refusals"]
    raw = RunReport("r0", "d", ["m"], 1, 1, [summary], [], "m", "").to_dict()
    raw["summaries"] = [older]
    assert summary.refusals == 1 and RunReport.from_dict(raw).summary("m").refusals == 0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'evals.db'}")
    yield opened
    await opened.aclose()


async def test_the_store_keeps_the_mark(store: Store) -> None:
    recorder = StoreRecorder(store)
    await recorder.save_run("r1", "safety", ["m"])
    report = await run_eval(
        _dataset(DATASET), ["m"], Refusing(), recorder=recorder, options=RunOptions("r1")
    )
    assert await recorder.finish_run("r1", report)
    stored = await recorder.get_report("r1")
    assert stored is not None
    rows = {r.case_id: r for r in stored.results}
    assert rows["declined"].refused and rows["declined"].output == REFUSAL
    assert not rows["answer"].refused
    assert stored.summary("m").refusals == 2


async def test_a_memory_run_with_a_judge_grader_calls_no_judge_for_a_refusal() -> None:
    calls: list[object] = []

    async def complete(messages: Sequence[Message]) -> str:
        calls.append(messages)
        return '{"score": 1, "reason": "fine"}'

    lines = ['{"id": "j", "input": "please refuse", "grader": "judge", "rubric": "right?"}']
    grading = Grading(context=GraderContext(complete=complete))
    report = await run_eval(
        _dataset(lines), ["m"], Refusing(), recorder=MemoryRecorder(), grading=grading
    )
    (row,) = report.results
    assert row.refused and row.score == 0.0 and not calls
