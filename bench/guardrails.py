"""Guardrails: the latency the default policy adds, and the injection detector's quality.

``.venv/bin/python -m bench.guardrails`` prints (and with ``--json PATH`` writes):

* the added time on the request path with the default policy of ``examples/guardrails.yaml``
  (prompt injection, PII redaction in and out, input size), and with its regex/PII part alone
  (``pii_set``: the policy without the injection detector): for a 1 kB prompt alone
  (``prompt``), and for a 1 kB prompt with a 1 kB answer, whole and streamed in 4-character
  deltas: the pre-call stage plus the output tap, measured
  in process, interleaved with the same calls through a pipeline without guards (which has no
  guard stage at all: ``guard_stages`` registers none when no policy is attached). Times are
  the thread's CPU time, not wall time: the machines we measure on are shared, and a
  preempted call would otherwise count another process's work (the guards do no I/O);
* the injection detector's precision and recall, 5-fold cross-validated on the shipped labelled
  set (the classifier is retrained on each fold's other four fifths; the heuristics need no
  training), and its p50/p95 latency per text.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import yaml

from modelyard.config import Settings
from modelyard.core.chat import ChatRequest, ChatResult, Choice, Message, TextPart, Usage
from modelyard.core.events import Finished, TextDelta, UsageReport
from modelyard.guardrails.classifier import folds, labelled_set, train
from modelyard.guardrails.injection import InjectionHeuristics, heuristic_score
from modelyard.guardrails.policy import Policies
from modelyard.services.guard_config import build_policies
from modelyard.services.guards import InputGuards, OutputGuards
from modelyard.services.pipeline import Caller, Run, Tap
from modelyard.tenancy.keys import Principal

EXAMPLE = Path(__file__).parents[1] / "examples" / "guardrails.yaml"
# About 1 kB of ordinary prose with a little PII in it, as a prompt and as an answer.
PROSE = (
    "The quarterly report shows revenue growth of 12 percent across 3 regions, while churn "
    "fell for the second quarter in a row. Please draft a short note for the board that "
    "explains the drivers, and send questions to ann.lee@example.com or call +1 415 555 2671. "
)
TEXT = (PROSE * 5)[:1024]


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Stub:
    """What a stage reads of the pipeline: nothing here."""


def _run(request: ChatRequest) -> Run:
    caller = Caller(Principal("key000000001"), "bench", "/v1/chat/completions")
    return Run(_Stub(), caller, request, None)  # type: ignore[arg-type]  # unused by guards


def _prompt_only(inputs: InputGuards) -> Callable[[], Any]:
    import asyncio

    loop = asyncio.new_event_loop()
    request = ChatRequest("guarded", [Message("user", (TextPart(TEXT),))])

    def call() -> Any:
        return loop.run_until_complete(inputs.check(_run(request), request))

    return call


def _guarded_call(inputs: InputGuards, outputs: OutputGuards, stream: bool) -> Callable[[], Any]:
    import asyncio

    loop = asyncio.new_event_loop()
    request = ChatRequest("guarded", [Message("user", (TextPart(TEXT),))], stream=stream)
    answer = ChatResult([Choice(0, Message("assistant", (TextPart(TEXT),)), "stop")], Usage(1, 1))
    deltas = [TextDelta(TEXT[i : i + 4]) for i in range(0, len(TEXT), 4)]

    def call() -> Any:
        run = _run(request)
        checked = loop.run_until_complete(inputs.check(run, request))
        tap: Tap | None = outputs.open(run)
        assert tap is not None
        if not stream:
            return tap.result(answer), checked
        out = [tap.event(d) for d in deltas]
        out += [tap.event(Finished("stop")), tap.event(UsageReport(Usage(1, 1)))]
        return out, checked

    return call


def _plain_call(stream: bool) -> Callable[[], Any]:
    """Guards off: no stage runs; what remains is building the same objects."""
    request = ChatRequest("guarded", [Message("user", (TextPart(TEXT),))], stream=stream)

    def call() -> Any:
        return _run(request)

    return call


def _policies(with_injection: bool) -> Policies:
    """The example's policy, or its regex/PII part alone (without the injection detector)."""
    data = yaml.safe_load(EXAMPLE.read_text())
    if not with_injection:
        guards = data["guardrails"]["policies"]["default"]["guards"]
        data["guardrails"]["policies"]["default"]["guards"] = [
            g for g in guards if g["kind"] != "prompt_injection"
        ]
    return build_policies(Settings.model_validate(data), [])


def latency(rounds: int) -> dict[str, Any]:
    return {
        "pii_set": _latency(_policies(False), rounds),
        "default_policy": _latency(_policies(True), rounds),
    }


def _latency(policies: Policies, rounds: int) -> dict[str, Any]:
    inputs, outputs = InputGuards(policies), OutputGuards()
    results: dict[str, Any] = {}
    for mode in ("prompt", "whole", "stream"):
        stream = mode == "stream"
        on = _prompt_only(inputs) if mode == "prompt" else _guarded_call(inputs, outputs, stream)
        off = _plain_call(stream)
        on()  # load the libraries and the model once
        t_on: list[float] = []
        t_off: list[float] = []
        for _ in range(rounds):  # interleaved, so both see the machine in the same state
            for fn, sink in ((on, t_on), (off, t_off)):
                started = time.thread_time()
                fn()
                sink.append((time.thread_time() - started) * 1000)
        added = [a - b for a, b in zip(t_on, t_off, strict=True)]
        results[mode] = {
            "p50_added_ms": round(statistics.median(added), 3),
            "p95_added_ms": round(_p(added, 0.95), 3),
            "p50_off_ms": round(statistics.median(t_off), 4),
        }
    return results


def injection_quality() -> dict[str, Any]:
    examples = labelled_set()
    scores: dict[str, list[tuple[float, int]]] = {"heuristics": [], "classifier": [], "both": []}
    for rest, test in folds(examples):
        model = train(rest)
        both = InjectionHeuristics(0.5, model, True)
        for text, label in test:
            scores["heuristics"].append((heuristic_score(text), label))
            scores["classifier"].append((model.score(text), label))
            scores["both"].append((both.score(text), label))
    out: dict[str, Any] = {
        "examples": len(examples),
        "positives": sum(label for _, label in examples),
    }
    for name, pairs in scores.items():
        tp = sum(1 for s, label in pairs if s >= 0.5 and label)
        fp = sum(1 for s, label in pairs if s >= 0.5 and not label)
        fn = sum(1 for s, label in pairs if s < 0.5 and label)
        out[name] = {
            "precision": round(tp / max(1, tp + fp), 3),
            "recall": round(tp / (tp + fn), 3),
        }
    detector = InjectionHeuristics(0.5, train(examples), True)
    times: list[float] = []
    for _ in range(20):
        for text, _label in examples:
            started = time.thread_time()
            detector.score(text * 8)  # ~0.5-1 kB texts
            times.append((time.thread_time() - started) * 1000)
    out["latency_ms"] = {"p50": round(_p(times, 0.5), 4), "p95": round(_p(times, 0.95), 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = {"added_latency": latency(args.rounds), "injection": injection_quality()}
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
