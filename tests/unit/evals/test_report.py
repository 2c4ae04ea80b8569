import orjson

from modelyard.evals.html import render_html
from modelyard.evals.recorders import CaseResult, MemoryRecorder
from modelyard.evals.report import RunReport, build_report, render_table
from modelyard.evals.runner import RunOptions, run_eval
from tests.unit.evals.fakes import FakeCaller, arithmetic


async def report() -> RunReport:
    return await run_eval(
        arithmetic(),
        ["good", "good-cheap", "bad"],
        FakeCaller(),
        recorder=MemoryRecorder(),
        options=RunOptions(run_id="rep"),
    )


async def test_json_round_trip():
    original = await report()
    data = orjson.loads(orjson.dumps(original.to_dict()))
    assert data["best"] == "good" and len(data["results"]) == 120
    assert {s["deployment"] for s in data["summaries"]} == {"good", "good-cheap", "bad"}
    again = RunReport.from_dict(data)
    assert again.to_dict() == original.to_dict()
    assert render_table(again) == render_table(original)


async def test_text_table():
    text = render_table(await report())
    lines = text.splitlines()
    assert lines[0].startswith("run rep · dataset arithmetic · 40 cases")
    header = next(i for i, line in enumerate(lines) if line.startswith("deployment"))
    order = [line.split()[0] for line in lines[header + 2 : header + 5]]
    assert order == ["good", "good-cheap", "bad"]
    assert "$1.0000" not in text and "$1.00" in text  # 1,000 calls at 1,000 micros
    assert "mcnemar_exact" in text and "(significant)" in text and "(not significant)" in text
    assert text.endswith("at 62 % lower cost.")


async def test_html_is_self_contained_and_escaped():
    base = await report()
    results = [
        CaseResult("c", "<b>x</b>", 0, score=1.0, passed=True, output="<script>x</script>"),
        CaseResult("c", "plain", 0, score=0.0, output="no"),
    ]
    escaped = build_report("r", "d", ["<b>x</b>", "plain"], results)
    page = render_html(escaped)
    assert "<script" not in page and "&lt;script&gt;" in page and "&lt;b&gt;x" in page
    full = render_html(base)
    assert full.count("<svg") == 2
    assert "<line" in full and "<circle" in full  # CI whiskers and the cost/score scatter
    assert "http://" not in full and "https://" not in full and "<script" not in full
    assert "62 % lower cost" in full


def test_recommendation_variants():
    def results(dep: str, scores: list[float], cost: int | None) -> list[CaseResult]:
        return [
            CaseResult(f"c{i}", dep, 0, score=s, passed=s == 1.0, cost_micros=cost)
            for i, s in enumerate(scores)
        ]

    ones, zeros = [1.0] * 20, [0.0] * 20
    only = build_report("r", "d", ["a"], results("a", ones, 5))
    assert only.recommendation.startswith("Only a was evaluated")
    lopsided = build_report("r", "d", ["a", "b"], results("a", ones, 5) + results("b", zeros, 1))
    assert "every other deployment scores significantly lower" in lopsided.recommendation
    unknown = build_report(
        "r", "d", ["a", "b"], results("a", ones, None) + results("b", ones, None)
    )
    assert "Costs are unknown" in unknown.recommendation
    assert unknown.summary("a").cost_per_1k_micros is None
    cheaper_best = build_report("r", "d", ["a", "b"], results("a", ones, 1) + results("b", ones, 9))
    assert "keep a" in cheaper_best.recommendation
    assert build_report("r", "d", ["a"], []).recommendation == "No results yet."


def test_errors_score_zero_and_are_counted():
    results = [
        CaseResult("c1", "a", 0, score=1.0, passed=True, latency_s=1.0),
        CaseResult("c2", "a", 0, error="HTTP 500", latency_s=9.0),
    ]
    s = build_report("r", "d", ["a"], results).summary("a")
    assert s.score == 0.5 and s.errors == 1 and s.pass_rate == 0.5
    assert s.latency_p95_s == 1.0  # failed calls do not count in latency


def test_a_single_deployment_table_has_no_significance_legend():
    results = [CaseResult(f"c{i}", "a", 0, score=1.0, passed=True) for i in range(5)]
    text = render_table(build_report("r", "d", ["a"], results))
    assert "significantly different" not in text
    assert "significantly different" in render_table(
        build_report(
            "r", "d", ["a", "b"], [*results, *[CaseResult(f"c{i}", "b", 0) for i in range(5)]]
        )
    )
