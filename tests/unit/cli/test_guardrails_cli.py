"""``modelyard guardrails explain``, from the shipped example config."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from modelyard.cli.main import main

EXAMPLE = str(Path(__file__).parents[3] / "examples" / "guardrails.yaml")


def test_explain_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["guardrails", "explain", "guarded", "--config", EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert "policy default (chosen by: deployment guarded), reversible redaction" in out
    assert "1. prompt_injection (prompt_injection): block on input, tool_output" in out
    assert main(["guardrails", "explain", "local", "--config", EXAMPLE]) == 0
    assert "local: no guards" in capsys.readouterr().out


def test_explain_json_and_unknown_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["guardrails", "explain", "guarded", "--json", "--config", EXAMPLE]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert [g["kind"] for g in shown["guards"]] == ["prompt_injection", "pii", "max_size"]
    assert main(["guardrails", "explain", "nope", "--config", EXAMPLE]) == 2
    assert "deployments: guarded" in capsys.readouterr().err
