"""``modelyard models --catalog``: the shipped catalog, listed and searched offline."""

from __future__ import annotations

import socket
from typing import Any

import orjson
import pytest

from modelyard.cli.main import main


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any) -> None:
        raise AssertionError("the catalog listing must not open a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def _rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()]


def test_table_lists_vendor_model_context_max_output_and_prices(capsys: pytest.CaptureFixture[str]):
    assert main(["models", "--catalog", "--vendor", "openai", "--search", "gpt-4o-mini"]) == 0
    rows = _rows(capsys.readouterr().out)
    header, *body = rows
    assert header[:5] == ["PROVIDER", "VENDOR", "MODEL", "CONTEXT", "MAX"]
    direct = next(r for r in body if r[0] == "openai" and r[2] == "gpt-4o-mini")
    assert direct == [
        "openai",
        "openai",
        "gpt-4o-mini",
        "128,000",
        "16,384",
        "0.15",
        "0.6",
        "0.075",
    ]
    assert all("gpt-4o-mini" in r[2] for r in body)


def test_filters_by_capability_context_and_price(capsys: pytest.CaptureFixture[str]):
    args = ["models", "--catalog", "--json", "--capability", "reasoning"]
    args += ["--min-context", "200000", "--max-input-price", "1.5"]
    assert main(args) == 0
    found = orjson.loads(capsys.readouterr().out)
    assert found
    for model in found:
        assert model["capabilities"]["reasoning"] is True
        assert model["context_window"] >= 200000
        assert float(model["prices"]["input"]) <= 1.5
    assert any(m["id"] == "o3-mini" and m["provider_type"] == "openai" for m in found)


def test_json_carries_modalities_capabilities_and_tiers(capsys: pytest.CaptureFixture[str]):
    args = ["models", "--catalog", "--json", "--vendor", "anthropic", "--search", "sonnet-4-5"]
    assert main(args) == 0
    found = orjson.loads(capsys.readouterr().out)
    direct = next(m for m in found if m["provider_type"] == "anthropic")
    assert direct["input_modalities"] == ["text", "image", "pdf"]
    assert direct["capabilities"] == {
        "tools": True,
        "images": True,
        "json_schema": True,
        "reasoning": True,
    }
    assert direct["prices"]["input"] == "3"
    assert direct["prices"]["tiers"]["input"] == [{"above_input_tokens": 200000, "price": "6"}]


def test_nothing_matching_says_so(capsys: pytest.CaptureFixture[str]):
    assert main(["models", "--catalog", "--search", "no-such-model-xyz"]) == 1
    assert "no model" in capsys.readouterr().err


def test_a_bad_capability_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        main(["models", "--catalog", "--capability", "telepathy"])
    assert "invalid choice" in capsys.readouterr().err
