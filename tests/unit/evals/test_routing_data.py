"""Reading routing data files (the shared routing-data format)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.core.errors import InvalidRequest
from modelyard.evals.routing_data import load_dir


def _write_csv(path: Path, rows: list[str]) -> None:
    path.write_text("prompt,weak-m,strong-m,strong-m_response\n" + "".join(rows))


def test_csv_and_mt_bench_files_with_contamination_left_out(tmp_path):
    _write_csv(
        tmp_path / "mmlu_a.csv",
        ['"q1\nA. x",False,True,"some, text"\n', "q2,True,True,r\n", "q3,False,False,r\n"],
    )
    (tmp_path / "contaminated_prompts.jsonl").write_text(json.dumps({"train_prompt": "q3"}))
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "question.jsonl").write_text(json.dumps({"question_id": "7", "turns": "['t1', 't2']"}))
    judged = [
        {"question_id": 7, "turn": 1, "model": "weak-m", "score": 4},
        {"question_id": 7, "turn": 1, "model": "strong-m", "score": 9},
        {"question_id": 7, "turn": 2, "model": "weak-m", "score": -1},
    ]
    (bench / "judgements.jsonl").write_text("\n".join(json.dumps(j) for j in judged))
    data = load_dir(tmp_path)
    assert (data.weak_model, data.strong_model) == ("weak-m", "strong-m")
    got = [(i.source, i.prompt, i.weak, i.strong) for i in data.items]
    assert got == [
        ("mmlu_a", "q1\nA. x", 0.0, 1.0),
        ("mmlu_a", "q2", 1.0, 1.0),
        ("mt_bench", "t1", 0.4, 0.9),
    ]


def test_named_models_must_exist(tmp_path):
    _write_csv(tmp_path / "a.csv", ["q,True,False,r\n"])
    with pytest.raises(InvalidRequest, match="no model column 'gpt'") as err:
        load_dir(tmp_path, strong="gpt")
    assert err.value.param == "--strong"
    # Named the other way round, the worse model can be the "strong" one on purpose.
    data = load_dir(tmp_path, weak="strong-m", strong="weak-m")
    assert data.items[0].strong == 1.0


def test_an_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidRequest, match="no routing data"):
        load_dir(tmp_path)
