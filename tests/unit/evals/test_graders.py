from collections.abc import Sequence
from typing import Any

import pytest

from modelyard.core.chat import Message, ToolCall
from modelyard.evals.datasets import parse_case
from modelyard.evals.graders import (
    Grade,
    GraderContext,
    GraderError,
    GraderRegistry,
    Output,
    extract_numbers,
)
from modelyard.evals.schema import validate

REG = GraderRegistry()


def case(**fields: Any):
    return parse_case({"input": "q", **fields}, "t.jsonl:1")


async def grade(text: str, ctx: GraderContext | None = None, calls=(), **fields: Any) -> Grade:
    return await REG.grade(case(**fields), Output(text, tuple(calls)), ctx or GraderContext())


@pytest.mark.parametrize(
    ("text", "fields", "passed"),
    [
        ("Paris", {"expected": "Paris", "grader": "exact"}, True),
        (" Paris \n", {"expected": "Paris", "grader": "exact"}, True),
        ("paris", {"expected": "Paris", "grader": "exact"}, False),
        ("paris", {"expected": "Paris", "grader": "exact", "options": {"ignore_case": True}}, True),
        ("Paris.", {"expected": "Paris", "grader": "exact"}, False),
        ("Paris.", {"expected": "Paris", "options": {"ignore_punctuation": True}}, True),
        ("P a r i s", {"expected": "Paris", "options": {"ignore_whitespace": True}}, True),
        ("Lyon", {"expected": ["Paris", "Lyon"], "grader": "exact"}, True),
        ("The capital is PARIS.", {"expected": "Paris", "grader": "contains"}, True),
        ("The capital is Lyon.", {"expected": "Paris", "grader": "contains"}, False),
        ("I have 14 apples", {"expected": "4", "grader": "contains"}, True),
        ("I have 14 apples", {"expected": "4", "options": {"whole_word": True}}, False),
        (
            "it is 4.",
            {"expected": "4", "grader": "contains", "options": {"whole_word": True}},
            True,
        ),
        ("red and blue", {"expected": ["red", "green"], "grader": "contains"}, True),
        ("red and blue", {"expected": ["red", "green"], "options": {"all": True}}, False),
        ("2024-01-31", {"regex": r"^\d{4}-\d{2}-\d{2}$"}, True),
        ("on 2024-01-31", {"regex": r"\d{4}-\d{2}-\d{2}", "options": {"full": True}}, False),
        ("YES", {"regex": "yes", "options": {"ignore_case": True}}, True),
    ],
)
async def test_text_graders(text, fields, passed):
    if "grader" not in fields and "options" in fields and "regex" not in fields:
        fields["grader"] = (
            "contains"
            if "whole_word" in fields["options"] or "all" in fields["options"]
            else "exact"
        )
    fields = {("grader_options" if k == "options" else k): v for k, v in fields.items()}
    result = await grade(text, **fields)
    assert result.passed is passed
    assert result.score == (1.0 if passed else result.score)
    assert result.reason


async def test_contains_all_scores_the_fraction_found():
    result = await grade(
        "red", expected=["red", "green"], grader="contains", grader_options={"all": True}
    )
    assert result.score == 0.5 and not result.passed


@pytest.mark.parametrize(
    ("text", "passed"),
    [
        ('{"ok": true}', True),
        ('Sure!\n```json\n{"ok": true}\n```', True),
        ("here: [1, 2] done", True),
        ("{ok: true}", False),
        ("", False),
    ],
)
async def test_json_valid(text, passed):
    assert (await grade(text, grader="json_valid")).passed is passed


async def test_json_valid_strict_refuses_surrounding_text():
    result = await grade('Sure: {"ok": 1}', grader="json_valid", grader_options={"strict": True})
    assert not result.passed


PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("text", "passed", "reason"),
    [
        ('{"name": "Ada", "age": 36}', True, "valid"),
        ('{"name": "Ada"}', False, "missing required property 'age'"),
        ('{"name": "Ada", "age": -1}', False, "$.age: must be >= 0"),
        ('{"name": "Ada", "age": 3.5}', False, "$.age: expected integer"),
        ('{"name": "Ada", "age": true}', False, "$.age: expected integer"),
        ('{"name": "Ada", "age": 1, "x": 1}', False, "unexpected property 'x'"),
        ("not json", False, "not JSON"),
    ],
)
async def test_json_schema(text, passed, reason):
    result = await grade(text, schema=PERSON)
    assert result.passed is passed
    assert reason in result.reason


def test_schema_subset_keywords():
    schema = {
        "$defs": {"tag": {"type": "string", "enum": ["a", "b"]}},
        "type": "object",
        "properties": {
            "tags": {
                "type": "array",
                "items": {"$ref": "#/$defs/tag"},
                "minItems": 1,
                "uniqueItems": True,
            },
            "id": {"anyOf": [{"type": "string", "pattern": "^x"}, {"type": "integer"}]},
            "n": {"type": ["number", "null"], "exclusiveMaximum": 10, "multipleOf": 0.5},
            "one": {"oneOf": [{"type": "string"}, {"const": 1}]},
            "neg": {"not": {"type": "string"}},
        },
    }
    good = {"tags": ["a", "b"], "id": "x1", "n": 9.5, "one": 1, "neg": 3}
    assert validate(good, schema) == []
    bad = {"tags": ["a", "a", "c"], "id": "y", "n": 10, "one": [], "neg": "s"}
    errors = validate(bad, schema)
    joined = "\n".join(errors)
    for needle in (
        "$.tags[1]: duplicate item",
        "$.tags[2]: must be one of",
        "$.id: matches none",
        "$.n: must be < 10",
        "$.one: must match exactly one",
        "$.neg: must not match",
    ):
        assert needle in joined
    assert validate(None, {"type": ["number", "null"]}) == []


@pytest.mark.parametrize(
    ("text", "fields", "passed"),
    [
        ("The answer is 42.", {"expected": 42}, True),
        ("Step 1: 6*7. Answer: 42", {"expected": 42}, True),
        ("42 or maybe 41", {"expected": 42}, False),
        ("42 or maybe 41", {"expected": 42, "grader_options": {"pick": "any"}}, True),
        ("42 or maybe 41", {"expected": 42, "grader_options": {"pick": "first"}}, True),
        ("about 3.14159", {"expected": 3.14, "grader_options": {"abs_tol": 0.01}}, True),
        ("about 3.2", {"expected": 3.14, "grader_options": {"abs_tol": 0.01}}, False),
        ("1,000,000 people", {"expected": 1_010_000, "grader_options": {"rel_tol": 0.02}}, True),
        ("−5 degrees", {"expected": -5}, True),
        ("no idea", {"expected": 1}, False),
    ],
)
async def test_numeric(text, fields, passed):
    assert (await grade(text, **fields)).passed is passed


def test_extract_numbers():
    assert extract_numbers("a 1,234.5 b -7 c .5 d 1e3") == [1234.5, -7.0, 0.5, 1000.0]


WEATHER = [
    {"name": "get_weather", "arguments": {"city": "Oslo"}},
    {"name": "get_weather", "arguments": {"city": "Rome"}},
]


@pytest.mark.parametrize(
    ("calls", "fields", "passed", "score"),
    [
        (
            [
                ToolCall("1", "get_weather", '{"city": "Rome"}'),
                ToolCall("2", "get_weather", '{"city":"Oslo"}'),
            ],
            {},
            True,
            1.0,
        ),
        ([ToolCall("1", "get_weather", '{"city": "Rome"}')], {}, False, 0.5),
        (
            [
                ToolCall("1", "get_weather", '{"city": "Rome"}'),
                ToolCall("2", "get_weather", '{"city": "Paris"}'),
            ],
            {},
            False,
            0.5,
        ),
        (
            [
                ToolCall("1", "get_weather", '{"city": "Rome", "unit": "C"}'),
                ToolCall("2", "get_weather", '{"city": "Oslo", "unit": "C"}'),
            ],
            {},
            False,
            0.0,
        ),
        (
            [
                ToolCall("1", "get_weather", '{"city": "Rome", "unit": "C"}'),
                ToolCall("2", "get_weather", '{"city": "Oslo", "unit": "C"}'),
            ],
            {"grader_options": {"arguments": "subset"}},
            True,
            1.0,
        ),
        ([], {}, False, 0.0),
    ],
)
async def test_tool_call(calls, fields, passed, score):
    result = await grade("", calls=calls, expected=WEATHER, grader="tool_call", **fields)
    assert result.passed is passed
    assert result.score == pytest.approx(score)


async def test_tool_call_name_only_and_string_arguments():
    expected = [{"name": "lookup"}, {"name": "save", "arguments": '{"k": 1}'}]
    calls = [ToolCall("a", "save", '{"k": 1.0}'), ToolCall("b", "lookup", '{"anything": 1}')]
    assert (await grade("", calls=calls, expected=expected, grader="tool_call")).passed


async def test_similarity_uses_the_injected_embedder():
    seen: list[Sequence[str]] = []

    async def embed(texts: Sequence[str]) -> list[list[float]]:
        seen.append(texts)
        table = {"same": [1.0, 0.0], "ref": [1.0, 0.0], "close": [0.9, 0.1], "far": [0.0, 1.0]}
        return [table[t] for t in texts]

    ctx = GraderContext(embed=embed)
    assert (await grade("same", ctx, reference="ref")).score == pytest.approx(1.0)
    close = await grade("close", ctx, reference="ref")
    assert close.passed and 0.98 < close.score < 1.0
    assert not (await grade("far", ctx, reference="ref")).passed
    assert not (
        await grade("close", ctx, reference="ref", grader_options={"threshold": 0.999})
    ).passed
    assert seen[0] == ["same", "ref"]


async def test_judge_grader_scores_and_shows_the_prompt():
    prompts: list[Sequence[Message]] = []

    async def complete(messages: Sequence[Message]) -> str:
        prompts.append(messages)
        return '{"score": 8, "reason": "mostly right"}'

    result = await grade("an answer", GraderContext(complete=complete), rubric="Be right.")
    assert result.score == pytest.approx(0.8) and result.passed
    assert result.reason == "mostly right"
    user = prompts[0][-1].text()
    assert "an answer" in user and "Be right." in user


async def test_model_graders_need_their_model():
    with pytest.raises(GraderError, match="judge"):
        await grade("x", rubric="r")
    with pytest.raises(GraderError, match="embedding"):
        await grade("x", reference="r")
    reg = GraderRegistry()
    with pytest.raises(GraderError, match=r"t\.jsonl:1: grader .judge. needs a judge"):
        reg.check([case(rubric="r")], GraderContext())
    with pytest.raises(GraderError, match="unknown grader 'nope'"):
        reg.check([case(grader="nope")], GraderContext())


async def test_custom_graders_sync_async_and_via_entry_points():
    reg = GraderRegistry()
    reg.register("length", lambda c, o: min(1.0, len(o.text) / 10))

    async def shouty(c, o):
        return Grade(1.0 if o.text.isupper() else 0.0, o.text.isupper(), "caps")

    reg.register("shouty", shouty)
    c = case(grader="length")
    assert (await reg.grade(c, Output("12345"), GraderContext())) == Grade(0.5, True)
    assert not (
        await reg.grade(
            case(grader="length", grader_options={"threshold": 0.6}),
            Output("12345"),
            GraderContext(),
        )
    ).passed
    assert (await reg.grade(case(grader="shouty"), Output("HI"), GraderContext())).passed
    reg.register("broken", lambda c, o: 7)
    with pytest.raises(GraderError, match=r"outside 0\.\.1"):
        await reg.grade(case(grader="broken"), Output(""), GraderContext())
    with pytest.raises(GraderError, match="built in"):
        reg.register("exact", lambda c, o: 1.0)

    class EntryPoint:
        name = "plugin"
        value = "pkg:fn"

        def load(self):
            return lambda c, o: 1.0

    class Broken(EntryPoint):
        name = "broken_plugin"

        def load(self):
            raise ImportError("no module pkg")

    plugged = GraderRegistry(entries=[EntryPoint(), Broken()])
    assert (await plugged.grade(case(grader="plugin"), Output(""), GraderContext())).passed
    with pytest.raises(
        GraderError, match=r"'broken_plugin' \(modelyard.graders entry point pkg:fn\)"
    ):
        plugged.get("broken_plugin")
