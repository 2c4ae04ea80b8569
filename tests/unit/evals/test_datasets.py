from pathlib import Path

import pytest

from modelyard.evals.datasets import (
    DatasetError,
    bundled_datasets,
    load_bundled,
    load_dataset,
    parse_dataset,
    resolve_dataset,
)


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_simplest_line_works_as_is(tmp_path):
    path = write(
        tmp_path,
        '{"input": "What is the capital of France?", "expected": "Paris", "grader": "contains"}',
    )
    dataset = load_dataset(path)
    (case,) = dataset.cases
    assert dataset.name == "cases"
    assert case.grader == "contains" and case.expected == "Paris"
    assert [m.role for m in case.messages] == ["user"]
    assert case.messages[0].text() == "What is the capital of France?"
    assert case.source == f"{path}:1"


def test_messages_tools_system_options_and_ids(tmp_path):
    path = write(
        tmp_path,
        "# a comment",
        "",
        '{"id": 7, "system": "Be brief.", "input": [{"role": "user", "content": '
        '[{"type": "text", "text": "hi"}]}], "regex": "h.", "grader_options": {"full": true}}',
        '{"input": "weather?", "tools": [{"type": "function", "function": {"name": "w", '
        '"parameters": {"type": "object"}}}, {"name": "flat"}], '
        '"expected": [{"name": "w", "arguments": {}}], "max_tokens": 20, "temperature": 0}',
    )
    first, second = load_dataset(path).cases
    assert first.id == "7" and first.grader == "regex" and first.options == {"full": True}
    assert [m.role for m in first.messages] == ["system", "user"]
    assert second.grader == "tool_call"
    assert [t.name for t in second.tools] == ["w", "flat"]
    assert second.max_tokens == 20 and second.temperature == 0.0
    assert second.id.startswith("c")
    # Derived ids are stable: the same line gets the same id wherever it is.
    again = parse_dataset(path.read_text().splitlines()[-1], name="x").cases[0]
    assert again.id == second.id


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("{not json", "cases.jsonl:2: not valid JSON"),
        ('["a"]', "cases.jsonl:2: a case must be a JSON object"),
        ('{"expected": "x"}', "cases.jsonl:2: input: missing"),
        ('{"input": "q"}', "cases.jsonl:2: grader: missing"),
        ('{"input": "q", "expected": "x", "colour": 1}', "cases.jsonl:2: colour: unknown field"),
        ('{"input": [{"role": "robot", "content": "x"}], "expected": "x"}', "input[0].role"),
        ('{"input": [{"role": "user", "content": 5}], "expected": "x"}', "input[0].content"),
        ('{"input": "q", "expected": "x", "tools": [{"type": "function"}]}', "tools[0].name"),
        ('{"input": "q", "expected": "x", "max_tokens": 0}', "cases.jsonl:2: max_tokens"),
        ('{"input": "q", "schema": "nope"}', "cases.jsonl:2: schema"),
        ('{"id": "a", "input": "q", "expected": "x"}', "id: 'a' already used at"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path, line, needle):
    path = write(tmp_path, '{"id": "a", "input": "ok", "expected": "ok"}', line)
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert needle in str(info.value)
    assert str(info.value).startswith(str(path))


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(DatasetError, match="no cases"):
        load_dataset(write(tmp_path, "# nothing"))
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(tmp_path / "absent.jsonl")


def test_bundled_datasets_load_and_resolve():
    names = bundled_datasets()
    assert {"smoke", "structured", "judged"} <= set(names)
    for name in names:
        assert len(load_bundled(name)) > 0
    smoke = resolve_dataset("smoke")
    assert 8 <= len(smoke) <= 15
    assert all(c.max_tokens and c.max_tokens <= 64 for c in smoke.cases)
    with pytest.raises(DatasetError, match="no such bundled dataset"):
        resolve_dataset("nope")


def test_bundled_datasets_ship_in_the_wheel_config():
    # hatch packages everything under src/modelyard unless .gitignore'd: check nothing hides them.
    root = Path(__file__).resolve().parents[3]
    ignore = (root / ".gitignore").read_text() if (root / ".gitignore").exists() else ""
    assert "jsonl" not in ignore
    assert 'packages = ["src/modelyard"]' in (root / "pyproject.toml").read_text()
