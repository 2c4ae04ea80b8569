"""Shadow traffic evaluation: the primary's and the candidate's answers to the same real requests.

Modes (``ShadowOptions.mode``):

* ``pairwise``: a judge compares the two answers in both orders (position bias controlled);
  the candidate scores 1 for a win, 0.5 a tie, 0 a loss, the primary the complement.
* ``judge``: a judge scores each answer on its own against a rubric.
* ``similarity``, ``exact``, ``contains``: the primary's answer is the reference; the candidate
  is scored by agreement with it and the primary scores 1 by definition.

A side that refused (``primary_refusal``/``candidate_refusal``: the model declined) gave no
answer to compare: its result is the refusal, marked ``refused``, scored 0 and failed, as a
dataset case's default ``on_refusal: fail``. The other side is then graded alone: by the judge
in ``judge`` mode, else it passes with 1 (an answer where the other declined). Both refused:
both score 0.

The report has the same shape as a dataset run's, with deployments ``primary`` and ``candidate``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.core.chat import Message
from modelyard.evals.datasets import Case, DatasetError, parse_case
from modelyard.evals.graders import GraderError, Output
from modelyard.evals.judge import JudgeParseError, judge_pairwise
from modelyard.evals.recorders import CaseResult
from modelyard.evals.report import RunReport, build_report
from modelyard.evals.runner import Grading, new_run_id

PRIMARY, CANDIDATE = "primary", "candidate"
MODES = ("pairwise", "judge", "similarity", "exact", "contains")


@dataclass(frozen=True, slots=True)
class ShadowPair:
    """One request answered by the primary and (in the shadow) by the candidate."""

    id: str
    messages: tuple[Message, ...]
    primary_output: str
    candidate_output: str | None
    primary_latency_s: float = 0.0
    candidate_latency_s: float = 0.0
    primary_cost_micros: int | None = None
    candidate_cost_micros: int | None = None
    candidate_error: str | None = None
    # The model declined (a refusal, apart from the answer text); None: it did not.
    primary_refusal: str | None = None
    candidate_refusal: str | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str = "record") -> ShadowPair:
        """From a dict such as a JSONL line: ``messages`` (or ``request.messages`` / ``input``)
        plus the fields above."""
        request = raw.get("request")
        messages_raw = request.get("messages") if isinstance(request, Mapping) else None
        source = {"input": messages_raw or raw.get("messages") or raw.get("input"), "grader": "-"}
        try:
            messages = parse_case(source, where).messages
        except DatasetError as exc:
            raise ValueError(str(exc)) from exc
        primary = raw.get("primary_output")
        if not isinstance(primary, str):
            raise ValueError(f"{where}: primary_output: must be a string")
        refusals = [raw.get(f"{who}_refusal") for who in (PRIMARY, CANDIDATE)]
        for who, refusal in zip((PRIMARY, CANDIDATE), refusals, strict=True):
            if refusal is not None and not isinstance(refusal, str):
                raise ValueError(f"{where}: {who}_refusal: must be a string or null")
        return cls(
            id=str(raw.get("id") or where),
            messages=messages,
            primary_output=primary,
            candidate_output=raw.get("candidate_output"),
            primary_latency_s=float(raw.get("primary_latency_s") or 0.0),
            candidate_latency_s=float(raw.get("candidate_latency_s") or 0.0),
            primary_cost_micros=raw.get("primary_cost_micros"),
            candidate_cost_micros=raw.get("candidate_cost_micros"),
            candidate_error=raw.get("candidate_error"),
            primary_refusal=refusals[0] or None,
            candidate_refusal=refusals[1] or None,
        )

    def question(self) -> str:
        users = [m for m in self.messages if m.role == "user"]
        return (users[-1] if users else self.messages[-1]).text()


@dataclass(frozen=True, slots=True)
class ShadowOptions:
    mode: str = "pairwise"
    rubric: str | None = None
    grader_options: Mapping[str, Any] = field(default_factory=dict)
    concurrency: int = 4
    name: str = "shadow"
    run_id: str | None = None


async def evaluate_shadow(
    pairs: Iterable[ShadowPair], grading: Grading, options: ShadowOptions | None = None
) -> RunReport:
    """Grade every pair and report ``primary`` against ``candidate``."""
    opts = options or ShadowOptions()
    if opts.mode not in MODES:
        raise ValueError(f"unknown shadow mode {opts.mode!r}; known: {', '.join(MODES)}")
    if opts.mode in ("pairwise", "judge") and grading.context.complete is None:
        raise GraderError(f"shadow mode {opts.mode!r} needs a judge deployment")
    if opts.mode == "similarity" and grading.context.embed is None:
        raise GraderError("shadow mode 'similarity' needs an embedding deployment")
    queue = list(pairs)
    results: list[CaseResult] = []

    async def worker() -> None:
        while queue:
            results.extend(await _grade_pair(queue.pop(0), grading, opts))

    async with asyncio.TaskGroup() as group:
        for _ in range(min(opts.concurrency, len(queue))):
            group.create_task(worker())
    return build_report(opts.run_id or new_run_id(), opts.name, [PRIMARY, CANDIDATE], results)


def _result(pair: ShadowPair, who: str) -> CaseResult:
    primary = who == PRIMARY
    refusal = pair.primary_refusal if primary else pair.candidate_refusal
    output = pair.primary_output if primary else pair.candidate_output or ""
    return CaseResult(
        case_id=pair.id,
        deployment=who,
        repeat=0,
        # A refusal is what the side said instead of an answer (as a dataset run records it).
        output=refusal if refusal is not None else output,
        latency_s=pair.primary_latency_s if primary else pair.candidate_latency_s,
        cost_micros=pair.primary_cost_micros if primary else pair.candidate_cost_micros,
        error=None if primary else pair.candidate_error,
        refused=refusal is not None,
    )


async def _grade_pair(pair: ShadowPair, grading: Grading, opts: ShadowOptions) -> list[CaseResult]:
    primary, candidate = _result(pair, PRIMARY), _result(pair, CANDIDATE)
    if candidate.error is None and pair.candidate_output is None and not candidate.refused:
        candidate.error = "no candidate answer"
    try:
        await _score(pair, (primary, candidate), grading, opts)
    except (GraderError, JudgeParseError, ValueError) as exc:
        for result in (primary, candidate):
            result.error = result.error or f"grader {opts.mode}: {exc}"
    return [primary, candidate]


async def _score(
    pair: ShadowPair, both: tuple[CaseResult, CaseResult], grading: Grading, opts: ShadowOptions
) -> None:
    primary, candidate = both
    refused = [r for r in both if r.refused and r.error is None]
    for result in refused:
        _set(result, 0.0, False, f"refused: {result.output[:200]}")
    if refused:
        answered = [r for r in both if not r.refused and r.error is None]
        if opts.mode == "judge":
            await _judge_each(pair, answered, grading, opts)
        else:
            for result in answered:
                _set(result, 1.0, True, "answered where the other side refused")
        return
    if candidate.error is not None and opts.mode != "judge":
        _set(primary, 1.0, True, "candidate failed")
        return
    if opts.mode == "pairwise":
        assert grading.context.complete is not None
        verdict = await judge_pairwise(
            grading.context.complete,
            question=pair.question(),
            first=pair.primary_output,
            second=candidate.output,
            rubric=opts.rubric,
        )
        _set(candidate, verdict.score, verdict.score >= 0.5, verdict.reason)
        _set(primary, 1 - verdict.score, verdict.score <= 0.5, verdict.reason)
        return
    if opts.mode == "judge":
        await _judge_each(pair, both, grading, opts)
        return
    _set(primary, 1.0, True, "the reference")
    if candidate.error is None:
        output = Output(candidate.output)
        grade = await grading.registry.grade(_case(pair, opts), output, grading.context)
        _set(candidate, grade.score, grade.passed, grade.reason)


def _case(pair: ShadowPair, opts: ShadowOptions) -> Case:
    """The pair as a case for the mode's grader: the primary's answer is the reference."""
    return Case(
        id=pair.id,
        messages=pair.messages,
        grader=opts.mode,
        expected=pair.primary_output,
        reference=pair.primary_output,
        rubric=opts.rubric,
        options=opts.grader_options,
        source=f"shadow:{pair.id}",
    )


async def _judge_each(
    pair: ShadowPair, results: Iterable[CaseResult], grading: Grading, opts: ShadowOptions
) -> None:
    """``judge`` mode: each answer scored on its own against the rubric."""
    case = _case(pair, opts)
    for result in results:
        if result.error is None:
            grade = await grading.registry.grade(case, Output(result.output), grading.context)
            _set(result, grade.score, grade.passed, grade.reason)


def _set(result: CaseResult, score: float, passed: bool, reason: str) -> None:
    result.score, result.passed, result.reason = score, passed, reason
