"""The operator's view in ``deploy/observability/``: every PromQL expression of the Grafana
dashboard and of the alert rules names only series the gateway exports, and groups only by
labels those series carry (a small PromQL reader: strings, label matchers, ranges and numbers
out, functions and keywords out, what is left must be our series); promtool, when installed,
checks their syntax (it cannot tell which series exist)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelyard.observability.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "observability"
PROMQL_WORDS = frozenset(
    {
        "sum", "avg", "min", "max", "count", "rate", "irate", "increase", "histogram_quantile",
        "clamp_min", "clamp_max", "by", "without", "on", "ignoring", "group_left",
        "group_right", "and", "or", "unless", "bool", "offset", "abs", "topk", "bottomk",
        "delta", "deriv", "time", "vector", "scalar", "avg_over_time", "max_over_time",
    }
)  # fmt: skip
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def _exported() -> dict[str, frozenset[str]]:
    """Every series name the gateway exports, with its labels."""
    series: dict[str, frozenset[str]] = {}
    metrics = Metrics(())
    for family in metrics.registry.collect():
        labels = frozenset(_labels_of(metrics, family.name))
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
            "gauge": ("",),
        }[family.type]
        for suffix in suffixes:
            extra = {"le"} if suffix == "_bucket" else set()
            series[family.name + suffix] = labels | extra
    return series


def _labels_of(metrics: Metrics, name: str) -> tuple[str, ...]:
    for value in vars(metrics).values():
        if getattr(value, "_name", None) == name:
            return tuple(value._labelnames)
    raise AssertionError(f"no metric object named {name}")


def _expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    return exprs


def names_in(expr: str) -> tuple[set[str], set[str]]:
    """(series named, labels grouped by) in a PromQL expression."""
    grouped = {label.strip() for group in _GROUPING.findall(expr) for label in group.split(",")}
    rest = _GROUPING.sub(" ", expr)
    rest = re.sub(r'"(?:[^"\\]|\\.)*"', " ", rest)  # strings
    rest = re.sub(r"\{[^}]*\}", " ", rest)  # label matchers
    rest = re.sub(r"\[[^\]]*\]", " ", rest)  # ranges
    rest = re.sub(r"\b\d+(?:\.\d+)?(?:e-?\d+)?\b", " ", rest)  # numbers
    named = {token for token in _IDENT.findall(rest) if token not in PROMQL_WORDS}
    return named, grouped - {""}


def test_the_reader_finds_names_and_groups() -> None:
    named, grouped = names_in(
        'histogram_quantile(0.99, sum by (le, deployment) (rate(x_bucket{a="b"}[5m]))) > 1e-9'
    )
    assert (named, grouped) == ({"x_bucket"}, {"le", "deployment"})
    assert names_in("sum(rate(nope_total[5m]))")[0] == {"nope_total"}


@pytest.mark.parametrize("expr", _expressions())
def test_every_expression_names_exported_series_and_their_labels(expr: str) -> None:
    exported = _exported()
    named, grouped = names_in(expr)
    assert named, f"no series in {expr!r}"
    unknown = named - exported.keys()
    assert not unknown, f"{expr!r} names series the gateway does not export: {unknown}"
    carried = frozenset().union(*(exported[name] for name in named))
    assert grouped <= carried, f"{expr!r} groups by labels its series lack: {grouped - carried}"


def test_the_dashboard_and_rules_cover_what_an_operator_must_see() -> None:
    text = " ".join(_expressions())
    for series in (
        "modelyard_requests_total",  # error rate
        "modelyard_request_duration_seconds_bucket",  # p99 latency
        "modelyard_time_to_first_token_seconds_bucket",
        "modelyard_cost_usd_total",  # spend
        "modelyard_breaker_state",
        "modelyard_ledger_lag_seconds",
        "modelyard_ledger_dropped_rows",
        "modelyard_guardrail_verdicts_total",  # what the guards blocked, redacted, flagged
        "modelyard_guardrail_duration_seconds_bucket",
    ):
        assert series in text


def test_promtool_accepts_the_rules_and_every_dashboard_expression(tmp_path: Path) -> None:
    """The syntax, by Prometheus's own parser (Debian's ``prometheus`` ships it; ``make test``
    installs it, so there a missing promtool fails; the fast loop skips without it)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("MODELYARD_TESTS_OS_PACKAGES"):
            pytest.fail("promtool is missing though `make test` installed the OS packages")
        pytest.skip("promtool is not installed (tools/os-packages.sh installs it)")
    subprocess.run([promtool, "check", "rules", str(DEPLOY / "alerts.yml")], check=True)
    dashboard = json.loads((DEPLOY / "dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = [{"record": f"dashboard:panel{n}", "expr": e} for n, e in enumerate(exprs)]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    subprocess.run([promtool, "check", "rules", str(path)], check=True)
