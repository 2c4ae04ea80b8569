"""Running a dataset against deployments: bounded concurrency, retries, resumption.

Every (case, deployment, repeat) is called, graded and recorded as soon as it is done, so an
interrupted run loses at most the calls in flight: run again with the same ``run_id`` and the
recorder's ``completed`` set is skipped. A call that still failed after its retries is recorded
with its error (it scores 0 and counts as an error) and is tried again on resumption.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from modelyard.core.chat import ChatRequest, Message, ToolCall
from modelyard.evals.datasets import Case, Dataset
from modelyard.evals.graders import Complete, GraderContext, GraderError, GraderRegistry, Output
from modelyard.evals.judge import JudgeParseError
from modelyard.evals.recorders import CaseResult, Recorder
from modelyard.evals.report import RunReport, build_report


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """One call's answer (or its failure) as the runner needs it."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    cost_micros: int | None = None
    error: str | None = None
    # False for failures a retry cannot fix (a 400, a deployment that does not exist).
    retryable: bool = True
    # The model declined (a refusal): ``text`` is then what it said instead of an answer.
    refused: bool = False


class Caller(Protocol):
    async def __call__(self, deployment: str, request: ChatRequest) -> CallOutcome: ...


Progress = Callable[[str, int, int], None]
"""``progress(deployment, done, total)``, called after every recorded result."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    run_id: str | None = None
    repeat: int = 1
    concurrency: int = 4
    retries: int = 2
    backoff_s: float = 0.5


@dataclass(slots=True)
class Grading:
    """Which graders exist and what model-backed ones call."""

    registry: GraderRegistry = field(default_factory=GraderRegistry)
    context: GraderContext = field(default_factory=GraderContext)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def build_request(case: Case, deployment: str) -> ChatRequest:
    return ChatRequest(
        model=deployment,
        messages=list(case.messages),
        max_tokens=case.max_tokens,
        temperature=case.temperature,
        tools=case.tools,
    )


def judge_from_caller(caller: Caller, deployment: str, max_tokens: int = 300) -> Complete:
    """A judge for model-graded graders that calls ``deployment`` through ``caller``."""

    async def complete(messages: Sequence[Message]) -> str:
        request = ChatRequest(
            model=deployment, messages=list(messages), max_tokens=max_tokens, temperature=0.0
        )
        outcome = await caller(deployment, request)
        if outcome.error is not None:
            raise GraderError(f"judge {deployment}: {outcome.error}")
        if outcome.refused:  # a judge that declines gave no verdict to parse
            raise GraderError(f"judge {deployment} refused to judge: {outcome.text[:200]!r}")
        return outcome.text

    return complete


async def run_eval(
    dataset: Dataset,
    deployments: Sequence[str],
    caller: Caller,
    *,
    recorder: Recorder,
    options: RunOptions | None = None,
    progress: Progress | None = None,
    grading: Grading | None = None,
) -> RunReport:
    """Run every case on every deployment ``options.repeat`` times and build the report.

    Resumes ``options.run_id`` when the recorder has results for it.
    """
    opts = options or RunOptions()
    if not deployments:
        raise ValueError("no deployments to evaluate")
    if opts.repeat < 1 or opts.concurrency < 1 or opts.retries < 0:
        raise ValueError("repeat and concurrency must be at least 1, retries at least 0")
    grading = grading or Grading()
    grading.registry.check(dataset.cases, grading.context)
    run = _Run(dataset, list(dict.fromkeys(deployments)), caller, recorder, opts, grading)
    run.run_id = opts.run_id or new_run_id()
    await run.execute(progress)
    results = await recorder.results(run.run_id)
    return build_report(run.run_id, dataset, run.deployments, results, repeat=opts.repeat)


class _Run:
    def __init__(
        self,
        dataset: Dataset,
        deployments: list[str],
        caller: Caller,
        recorder: Recorder,
        options: RunOptions,
        grading: Grading,
    ) -> None:
        self.dataset = dataset
        self.deployments = deployments
        self.caller = caller
        self.recorder = recorder
        self.options = options
        self.grading = grading
        self.run_id = ""
        self.done: dict[str, int] = dict.fromkeys(deployments, 0)
        self.total = len(dataset.cases) * options.repeat

    async def execute(self, progress: Progress | None) -> None:
        completed = await self.recorder.completed(self.run_id)
        todo: deque[tuple[Case, int, str]] = deque()
        # Case-major order, so every deployment advances together and a partial run is a
        # fair comparison on the cases it reached.
        for case in self.dataset.cases:
            for repeat in range(self.options.repeat):
                for deployment in self.deployments:
                    if (case.id, deployment, repeat) in completed:
                        self.done[deployment] += 1
                    else:
                        todo.append((case, repeat, deployment))
        if progress is not None:
            for deployment in self.deployments:
                progress(deployment, self.done[deployment], self.total)

        async def worker() -> None:
            while todo:
                case, repeat, deployment = todo.popleft()
                result = await self.one(case, repeat, deployment)
                await self.recorder.record(self.run_id, result)
                self.done[deployment] += 1
                if progress is not None:
                    progress(deployment, self.done[deployment], self.total)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(self.options.concurrency, len(todo))):
                group.create_task(worker())

    async def call(self, case: Case, deployment: str) -> tuple[CallOutcome, int]:
        request = build_request(case, deployment)
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = await self.caller(deployment, request)
            except (TimeoutError, OSError, ValueError, RuntimeError) as exc:
                outcome = CallOutcome(error=f"{type(exc).__name__}: {exc}")
            if outcome.error is None or not outcome.retryable or attempt > self.options.retries:
                return outcome, attempt
            await asyncio.sleep(self.options.backoff_s * 2 ** (attempt - 1))

    async def one(self, case: Case, repeat: int, deployment: str) -> CaseResult:
        outcome, attempts = await self.call(case, deployment)
        result = CaseResult(
            case_id=case.id,
            deployment=deployment,
            repeat=repeat,
            output=outcome.text,
            tool_calls=[{"name": c.name, "arguments": c.arguments} for c in outcome.tool_calls],
            latency_s=outcome.latency_s,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            cost_micros=outcome.cost_micros,
            error=outcome.error,
            attempts=attempts,
            refused=outcome.refused,
        )
        if outcome.error is not None:
            result.reason = "call failed"
            return result
        output = Output(outcome.text, outcome.tool_calls, outcome.refused)
        try:
            grade = await self.grading.registry.grade(case, output, self.grading.context)
        except (GraderError, JudgeParseError, ValueError) as exc:
            result.error = f"grader {case.grader}: {exc}"
            return result
        result.score, result.passed, result.reason = grade.score, grade.passed, grade.reason
        return result
