"""Evaluations: datasets, graders, runs against deployments, statistics and reports.

A run calls deployments through a ``Caller`` (the CLI's goes through a running server, so limits,
the ledger and routing apply), grades every answer, records each result as soon as it exists
(``Recorder``), and aggregates a ``RunReport`` with confidence intervals, paired significance
tests against the best deployment and a plain recommendation.
"""

from modelyard.evals.datasets import Case, Dataset, DatasetError, load_dataset, resolve_dataset
from modelyard.evals.graders import Grade, GraderContext, GraderError, GraderRegistry, Output
from modelyard.evals.recorders import CaseResult, JsonlRecorder, MemoryRecorder, Recorder
from modelyard.evals.report import RunReport, build_report, render_table
from modelyard.evals.runner import Caller, CallOutcome, Grading, RunOptions, run_eval
from modelyard.evals.shadow import ShadowOptions, ShadowPair, evaluate_shadow

__all__ = [
    "CallOutcome",
    "Caller",
    "Case",
    "CaseResult",
    "Dataset",
    "DatasetError",
    "Grade",
    "GraderContext",
    "GraderError",
    "GraderRegistry",
    "Grading",
    "JsonlRecorder",
    "MemoryRecorder",
    "Output",
    "Recorder",
    "RunOptions",
    "RunReport",
    "ShadowOptions",
    "ShadowPair",
    "build_report",
    "evaluate_shadow",
    "load_dataset",
    "render_table",
    "resolve_dataset",
    "run_eval",
]
