"""The benchmark's ordering of interleaved rounds, its budgets file and the budget verdicts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from bench.ceilings import Ceilings
from bench.check import GROUPS, Budget, Figure, ceiling_figures, load_budgets, verdicts
from bench.interleaved import Sample, rotation
from bench.procs import BenchError


def test_two_targets_alternate_abba() -> None:
    orders = [rotation(["a", "b"], i) for i in range(4)]
    assert orders == [["a", "b"], ["b", "a"], ["b", "a"], ["a", "b"]]


def test_each_target_takes_each_place_equally_often() -> None:
    names = ["p", "q", "r", "s", "t"]
    places = Counter((name, place) for i in range(2 * len(names))
                     for place, name in enumerate(rotation(names, i)))  # fmt: skip
    assert set(places.values()) == {2}
    assert len(places) == len(names) ** 2


def test_the_shipped_budgets_name_known_groups_and_one_bound_each() -> None:
    budgets = load_budgets()
    assert {b.group for b in budgets} <= set(GROUPS)
    assert all((b.low is None) != (b.high is None) for b in budgets)
    measures = {b.measure for b in budgets}
    assert {"ceilings.default.nonstream", "ceilings.metered.stream"} <= measures


def test_a_budget_with_both_bounds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "budgets.toml"
    path.write_text(
        '[[budget]]\nname = "x"\nmeasure = "ceilings.default.stream"\nmin = 1\nmax = 2\n'
    )
    with pytest.raises(BenchError, match="exactly one of min and max"):
        load_budgets(path)


def test_verdicts_pass_miss_and_unmeasured() -> None:
    floor = Budget("floor", "ceilings.default.nonstream", 0.8, None)
    cap = Budget("cap", "guardrails.default_p50_ms", None, 2.0)
    lines, ok = verdicts([floor, cap], {floor.measure: Figure(0.85, (0.8, 0.9)),
                                        cap.measure: Figure(2.5)})  # fmt: skip
    assert not ok
    assert lines[0] == "PASS  floor: 0.8500 ≥ 0.8 (95 % interval 0.800–0.900)"
    assert lines[1] == "MISS  cap: 2.5000 ≤ 2"
    unsure = verdicts([floor], {floor.measure: Figure(0.79, (0.7, 0.9))})[0][0]
    assert unsure.startswith("MISS  floor: 0.7900") and "spans the bound" in unsure
    lines, ok = verdicts([floor], {})
    assert not ok and lines == ["FAIL  floor: not measured"]
    assert verdicts([floor], {floor.measure: Figure(0.8)})[1]


def test_ceiling_figures_divide_by_the_parsing_proxy_round_by_round() -> None:
    result = Ceilings(rounds=2, seconds=1.0, connections=32)
    result.samples["stream"] = {
        "parsing": [Sample(rps=1000, cpu_us=300), Sample(rps=500, cpu_us=400)],
        "default": [Sample(rps=800, cpu_us=600), Sample(rps=300, cpu_us=500)],
    }
    figures = ceiling_figures(result)
    assert set(figures) == {"default.stream", "default.stream.cpu"}
    assert figures["default.stream"].value == pytest.approx((0.8 + 0.6) / 2)
    assert figures["default.stream.cpu"].value == pytest.approx((0.5 + 0.8) / 2)
    budgets = {b.measure for b in load_budgets()}
    assert {"ceilings.default.stream.cpu", "responses.responses.cpu"} <= budgets
