"""``modelyard router train|evaluate`` on a small routing-data folder made here.

Two sources (files): prompts about proofs need the strong model, prompts about capitals do
not. Trained with one source held out, the router is evaluated on that source only.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from modelyard.cli.main import main
from modelyard.routing import features as F
from modelyard.services.routers import read

HARD = ("integral", "proof", "theorem", "derivative", "lemma", "eigenvalue")
EASY = ("capital", "colour", "animal", "greeting", "weather", "river")


def _write_source(path: Path, seed: int, n: int = 120) -> None:
    rng = random.Random(seed)
    lines = ["prompt,weak-m,strong-m"]
    for i in range(n):
        hard = i % 3 == 0
        word = rng.choice(HARD if hard else EASY)
        strong = "True"
        weak = "False" if hard and rng.random() < 0.9 else "True"
        lines.append(f'"case {i} {seed}: explain the {word}",{weak},{strong}')
    path.write_text("\n".join(lines) + "\n")


def _run(line: str) -> int:
    return main(line.split())


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        _write_source(folder / f"{name}.csv", seed)
    return folder


@pytest.fixture(scope="module")
def trained(data: Path) -> Path:
    """One router for the module (training imports scikit-learn: seconds)."""
    out = data.parent / "r.router"
    assert _run(f"router train --data {data} --out {out} --holdout 0.34 --seed 3") == 0
    return out


def test_train_reports_its_provenance(
    data: Path, trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = dict(read(trained).header)
    assert header["weak_model"] == "weak-m" and header["strong_model"] == "strong-m"
    assert len(header["held_out_sources"]) == 1 and len(header["trained_sources"]) == 2
    assert header["examples"] == 240 and len(header["data_sha256"]) == 64


def test_evaluate_on_the_held_out_source(
    data: Path, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = tmp_path / "r.html"
    line = f"router evaluate --router {trained} --data {data} --json --resamples 100"
    assert _run(f"{line} --html {html}") == 0
    got = json.loads(capsys.readouterr().out)
    assert got["n"] == 120  # the held-out source only
    assert got["excluded_trained_sources"] == read(trained).header["trained_sources"]
    assert got["apgr"] > 0.8 and got["beats_random"] is True
    assert 0.3 < got["random_apgr"] < 0.7
    assert 0 < got["cpt50"] <= got["cpt80"] <= 1
    assert "<svg" in html.read_text() and "beats random" in html.read_text()
    # No unquoted attribute ends a tag: before "/>" it swallows the slash in browsers.
    assert re.search(r"\s[\w-]+=[^\"\s>]+/?>", html.read_text()) is None


def test_evaluating_only_trained_sources_is_refused(
    data: Path, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = set(read(trained).header["trained_sources"])
    only_trained = tmp_path / "seen"
    only_trained.mkdir()
    for path in data.glob("*.csv"):
        if path.stem in seen:
            (only_trained / path.name).write_text(path.read_text())
    assert len(list(only_trained.glob("*.csv"))) == 2
    assert main(["router", "evaluate", "--router", str(trained), "--data", str(only_trained)]) == 2
    assert "trained on" in capsys.readouterr().err


def test_a_missing_router_file_fails_clearly(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["router", "evaluate", "--router", str(tmp_path / "nope"), "--data", str(data)])
    assert code == 1
    assert "cannot read router artifact" in capsys.readouterr().err


def test_train_into_the_store_then_list_and_show(
    data: Path,
    trained: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MODELYARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    config = tmp_path / "modelyard.json"
    config.write_text(json.dumps({"local": {"enabled": False}}))
    line = f"router train --data {data} --holdout 0.34 --seed 3 --config {config} --name mm"
    assert _run(f"{line} --json") == 0
    first = json.loads(capsys.readouterr().out)
    assert first["stored"] is True and first["out"] is None
    assert _run(line) == 0  # the same data and seed: the same content, already there
    assert "(already there)" in capsys.readouterr().out
    assert _run(f"router list --config {config} --json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["version"]) for r in listed] == [("mm", first["version"])]
    assert listed[0]["data_sha256"] == first["data_sha256"] == read(trained).header["data_sha256"]
    assert _run(f"router show mm --config {config}") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["seed"] == 3 and shown["weak_model"] == "weak-m"
    assert shown["provenance"]["held_out_sources"] == first["held_out_sources"]
    assert _run(f"router show mm --version nope --config {config}") == 2
    assert "no stored router 'mm' version 'nope'" in capsys.readouterr().err
    # Storing a new version is audited once; storing the same bytes again is no change.
    assert _run(f"audit list --json --config {config}") == 0
    audited = json.loads(capsys.readouterr().out)
    assert [(e["kind"], e["target"], e["after"]["version"]) for e in audited] == [
        ("router.store", "mm", first["version"])
    ]


def test_train_needs_a_destination(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(f"router train --data {data}") == 2
    assert "--out PATH, --name NAME or both" in capsys.readouterr().err


def test_train_with_character_grams_writes_a_chars_router(data: Path, trained: Path) -> None:
    out = data.parent / "chars.router"
    line = f"router train --data {data} --out {out} --holdout 0.34 --seed 3 --text-features chars"
    assert _run(line) == 0
    model = read(out)
    assert model.text_features == "chars" and model.header["text_features"] == "chars"
    assert read(trained).text_features == "words"  # the default
    hard, easy = "case 7 9: explain the eigenvalue", "case 7 9: explain the river"
    assert model.score_text(hard, F.facts(hard)) > model.score_text(easy, F.facts(easy))
