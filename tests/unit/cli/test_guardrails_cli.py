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


def test_attach_through_the_cli_and_explain(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELYARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    base = ["--config", EXAMPLE]
    assert main(["projects", "create", "acme", "--guardrails", "nope", *base]) == 2
    assert "use one of: default, off" in capsys.readouterr().err
    assert main(["projects", "create", "acme", "--guardrails", "default", *base]) == 0
    assert "created project acme" in capsys.readouterr().out
    assert main(["keys", "create", "--project", "acme", "--json", *base]) == 0
    key = orjson.loads(capsys.readouterr().out)["id"]
    assert main(["guardrails", "explain", "local", "--key", key, "--json", *base]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert (shown["policy"], shown["chosen_by"], shown["source"]) == ("default", "project", "admin")
    assert main(["keys", "update", key, "--guardrails", "off", *base]) == 0
    assert f"key {key}: guardrails off" in capsys.readouterr().out
    assert main(["guardrails", "explain", "guarded", "--key", key, *base]) == 0
    out = capsys.readouterr().out
    assert f"guarded: no guards (chosen by: key {key}, attached through the admin API" in out
    assert main(["projects", "update", "acme", "--guardrails", "none", *base]) == 0
    assert "project acme: guardrails none attached" in capsys.readouterr().out
