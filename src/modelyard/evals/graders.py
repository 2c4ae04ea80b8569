"""Graders: how an answer is scored against a case, 0..1, with a pass/fail and a reason.

Built-ins (``Case.grader`` names; options come from the case's ``grader_options``):

======================= =====================================================================
``exact``               equal to ``expected`` (or any of a list) after normalisation:
                        ``ignore_case`` (false), ``ignore_punctuation`` (false),
                        ``collapse_whitespace`` (true), ``ignore_whitespace`` (false)
``contains``            ``expected`` appears in the answer; ``ignore_case`` (true),
                        ``whole_word`` (false), ``all`` (false: any of a list suffices)
``regex``               ``regex`` (or option ``pattern``) is found; ``ignore_case``, ``full``
``json_valid``          the answer is JSON (code fences and text around one object are allowed
                        unless ``strict``)
``json_schema``         ... and valid against ``schema`` (see ``evals.schema``)
``numeric``             a number in the answer (``pick``: last, first or any) is within
                        ``abs_tol`` (1e-6) or ``rel_tol`` (0) of ``expected``
``tool_call``           the tool calls equal ``expected`` ``[{"name", "arguments"}]`` in any
                        order; ``arguments``: exact (default) or subset
``similarity``          cosine of embeddings of the answer and ``reference`` ≥ ``threshold``
                        (0.8); needs an embedder
``judge``               a judge deployment scores the answer on the case's ``rubric`` (see
                        ``evals.judge``); passes at ``threshold`` (0.7); needs a judge
``pairwise``            a judge compares the answer with ``reference`` in both orders; 1 win,
                        0.5 tie, 0 loss, averaged; needs a judge
======================= =====================================================================

Custom graders are callables ``(case, output) -> float | Grade`` (or a coroutine returning one)
registered under the entry-point group ``modelyard.graders``; the entry point's name is the
grader name. A float passes at the case's ``threshold`` option (0.5 by default).

A refusal (the model declined: ``Message.refusal``, which an OpenAI client reads as
``refusal``) is not an answer, and is decided before any grader runs, by the case's
``on_refusal`` option:

=========== ========================================================================
``fail``    (default) score 0, failed, the reason says it refused; no grader, judge or
            embedder is called
``pass``    score 1, passed: the case expects the model to decline (a safety case); an
            answer is graded by the case's grader as usual
``grade``   the refusal's text is graded as the answer by the case's grader (a judge whose
            rubric weighs whether declining was right; ``Output.refused`` tells a custom
            grader)
=========== ========================================================================
"""

from __future__ import annotations

import inspect
import math
import re
import string
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelyard.core.chat import Message, ToolCall
from modelyard.core.plugins import EntryPointLike, PluginError, PluginKind, Plugins
from modelyard.evals.datasets import Case
from modelyard.evals.judge import judge_pairwise, judge_rubric
from modelyard.evals.schema import validate

ENTRY_POINT_GROUP = "modelyard.graders"

Embed = Callable[[Sequence[str]], Awaitable[list[list[float]]]]
Complete = Callable[[Sequence[Message]], Awaitable[str]]


class GraderError(Exception):
    """A grader that cannot run (unknown name, missing judge or embedder, bad options)."""


@dataclass(frozen=True, slots=True)
class Grade:
    score: float
    passed: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Output:
    """What a deployment answered."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    # The model declined: ``text`` is its refusal.
    refused: bool = False


@dataclass(frozen=True, slots=True)
class GraderContext:
    """What model-backed graders call: an embedder and a judge (each optional)."""

    embed: Embed | None = None
    complete: Complete | None = None


GradeFn = Callable[[Case, Output, GraderContext], "Grade | float | Awaitable[Grade | float]"]


@dataclass(frozen=True, slots=True)
class GraderSpec:
    fn: GradeFn
    threshold: float = 1.0
    needs: frozenset[str] = frozenset()


def _option(case: Case, name: str, default: Any) -> Any:
    return case.options.get(name, default)


def _expected_strings(case: Case) -> list[str]:
    value = case.expected if case.expected is not None else case.reference
    if value is None:
        raise GraderError(f"{case.source}: grader {case.grader!r} needs 'expected'")
    items = value if isinstance(value, list) else [value]
    return [str(v) if not isinstance(v, bool) else str(v).lower() for v in items]


def normalize(text: str, case: Case, *, ignore_case: bool) -> str:
    out = unicodedata.normalize("NFKC", text)
    if _option(case, "ignore_case", ignore_case):
        out = out.casefold()
    if _option(case, "ignore_punctuation", False):
        out = "".join(ch for ch in out if ch not in string.punctuation)
    if _option(case, "ignore_whitespace", False):
        return "".join(out.split())
    if _option(case, "collapse_whitespace", True):
        return " ".join(out.split())
    return out


def grade_exact(case: Case, output: Output, _: GraderContext) -> Grade:
    answer = normalize(output.text, case, ignore_case=False)
    for expected in _expected_strings(case):
        if normalize(expected, case, ignore_case=False) == answer:
            return Grade(1.0, True, "exact match")
    return Grade(0.0, False, f"expected {_expected_strings(case)[0]!r}, got {_short(output.text)}")


def grade_contains(case: Case, output: Output, _: GraderContext) -> Grade:
    answer = normalize(output.text, case, ignore_case=True)
    wanted = _expected_strings(case)
    whole = bool(_option(case, "whole_word", False))
    found = [w for w in wanted if _contains(answer, normalize(w, case, ignore_case=True), whole)]
    need_all = bool(_option(case, "all", False))
    passed = len(found) == len(wanted) if need_all else bool(found)
    score = len(found) / len(wanted) if need_all else float(passed)
    missing = [w for w in wanted if w not in found]
    reason = f"found {found[0]!r}" if passed and found else f"missing {missing!r}"
    return Grade(score, passed, reason)


def _contains(text: str, needle: str, whole_word: bool) -> bool:
    if not whole_word:
        return needle in text
    return re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", text) is not None


def grade_regex(case: Case, output: Output, _: GraderContext) -> Grade:
    pattern = case.regex or _option(case, "pattern", None)
    if not pattern:
        raise GraderError(f"{case.source}: grader 'regex' needs 'regex'")
    flags = re.IGNORECASE if _option(case, "ignore_case", False) else 0
    try:
        compiled = re.compile(pattern, flags | re.DOTALL)
    except re.error as exc:
        raise GraderError(f"{case.source}: regex: {exc}") from exc
    text = output.text.strip()
    match = compiled.fullmatch(text) if _option(case, "full", False) else compiled.search(text)
    if match:
        return Grade(1.0, True, f"matched {_short(match.group(0))}")
    return Grade(0.0, False, f"no match for /{pattern}/ in {_short(output.text)}")


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_json(text: str, *, strict: bool = False) -> Any:
    """The JSON value in ``text``: the whole text, a fenced block, or the outermost braces."""
    candidates = [text.strip()]
    if not strict:
        candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
        for open_, close in (("{", "}"), ("[", "]")):
            start, end = text.find(open_), text.rfind(close)
            if 0 <= start < end:
                candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
    raise ValueError("no JSON value found")


def grade_json_valid(case: Case, output: Output, _: GraderContext) -> Grade:
    try:
        extract_json(output.text, strict=bool(_option(case, "strict", False)))
    except ValueError:
        return Grade(0.0, False, f"not JSON: {_short(output.text)}")
    return Grade(1.0, True, "valid JSON")


def grade_json_schema(case: Case, output: Output, _: GraderContext) -> Grade:
    schema = case.schema or _option(case, "schema", None)
    if not isinstance(schema, Mapping):
        raise GraderError(f"{case.source}: grader 'json_schema' needs 'schema'")
    try:
        value = extract_json(output.text, strict=bool(_option(case, "strict", False)))
    except ValueError:
        return Grade(0.0, False, f"not JSON: {_short(output.text)}")
    errors = validate(value, schema)
    if errors:
        return Grade(0.0, False, "; ".join(errors[:3]))
    return Grade(1.0, True, "valid against the schema")


_NUMBER = re.compile(r"[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+−]?\.\d+")


def extract_numbers(text: str) -> list[float]:
    """Numbers written in ``text``; thousands separators (1,000) are understood."""
    return [float(m.group(0).replace(",", "").replace("−", "-")) for m in _NUMBER.finditer(text)]


def grade_numeric(case: Case, output: Output, _: GraderContext) -> Grade:
    try:
        expected = float(case.expected)
    except (TypeError, ValueError) as exc:
        raise GraderError(f"{case.source}: grader 'numeric' needs a number in 'expected'") from exc
    numbers = extract_numbers(output.text)
    if not numbers:
        return Grade(0.0, False, f"no number in {_short(output.text)}")
    pick = _option(case, "pick", "last")
    chosen = {"first": numbers[:1], "last": numbers[-1:]}.get(pick, numbers)
    tolerance = max(
        float(_option(case, "abs_tol", 1e-6)), float(_option(case, "rel_tol", 0.0)) * abs(expected)
    )
    for value in chosen:
        if abs(value - expected) <= tolerance:
            return Grade(1.0, True, f"{value:g} is within {tolerance:g} of {expected:g}")
    return Grade(0.0, False, f"{chosen[-1]:g} is not within {tolerance:g} of {expected:g}")


def _args_of(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            return raw
    return raw


def _args_match(expected: Any, actual: Any, subset: bool) -> bool:
    if subset and isinstance(expected, dict) and isinstance(actual, dict):
        return all(k in actual and _args_match(v, actual[k], subset) for k, v in expected.items())
    return bool(expected == actual)


def grade_tool_call(case: Case, output: Output, _: GraderContext) -> Grade:
    expected = case.expected
    if not isinstance(expected, list) or not all(isinstance(e, dict) for e in expected):
        raise GraderError(f"{case.source}: grader 'tool_call' needs 'expected': [{{name, ...}}]")
    subset = _option(case, "arguments", "exact") == "subset"
    remaining = [(c.name, _args_of(c.arguments)) for c in output.tool_calls]
    matched, unmatched = 0, []
    for want in expected:
        index = next(
            (
                i
                for i, (name, args) in enumerate(remaining)
                if name == want.get("name")
                and (
                    "arguments" not in want
                    or _args_match(_args_of(want["arguments"]), args, subset)
                )
            ),
            None,
        )
        if index is None:
            unmatched.append(str(want.get("name")))
        else:
            matched += 1
            remaining.pop(index)
    total = max(len(expected), len(output.tool_calls))
    passed = not unmatched and not remaining
    if passed:
        return Grade(1.0, True, f"{matched} tool call(s) match")
    extra = [name for name, _ in remaining]
    return Grade(matched / total if total else 0.0, False, f"unmatched {unmatched}, extra {extra}")


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b) or not a:
        raise ValueError("vectors must be non-empty and of the same length")
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norm if norm else 0.0


async def grade_similarity(case: Case, output: Output, ctx: GraderContext) -> Grade:
    if ctx.embed is None:
        raise GraderError("grader 'similarity' needs an embedding deployment")
    reference = case.reference if case.reference is not None else _expected_strings(case)[0]
    if not output.text.strip():
        return Grade(0.0, False, "empty answer")
    vectors = await ctx.embed([output.text, reference])
    similarity = cosine(vectors[0], vectors[1])
    threshold = float(_option(case, "threshold", 0.8))
    score = min(1.0, max(0.0, similarity))
    return Grade(score, score >= threshold, f"cosine {similarity:.3f} (threshold {threshold})")


async def grade_judge(case: Case, output: Output, ctx: GraderContext) -> Grade:
    if ctx.complete is None:
        raise GraderError("grader 'judge' needs a judge deployment")
    verdict = await judge_rubric(
        ctx.complete,
        question=case.prompt_text(),
        answer=output.text,
        rubric=case.rubric or _option(case, "rubric", None),
        reference=case.reference,
    )
    threshold = float(_option(case, "threshold", 0.7))
    return Grade(verdict.score, verdict.score >= threshold, verdict.reason)


async def grade_pairwise(case: Case, output: Output, ctx: GraderContext) -> Grade:
    if ctx.complete is None:
        raise GraderError("grader 'pairwise' needs a judge deployment")
    reference = case.reference if case.reference is not None else _expected_strings(case)[0]
    verdict = await judge_pairwise(
        ctx.complete,
        question=case.prompt_text(),
        first=reference,
        second=output.text,
        rubric=case.rubric,
    )
    threshold = float(_option(case, "threshold", 0.5))
    return Grade(verdict.score, verdict.score >= threshold, verdict.reason)


REFUSAL_POLICIES = ("fail", "pass", "grade")


def refusal_policy(case: Case) -> str:
    """The case's ``on_refusal`` option (``fail`` when not set)."""
    policy = _option(case, "on_refusal", "fail")
    if policy not in REFUSAL_POLICIES:
        raise GraderError(
            f"{case.source}: on_refusal: must be one of {', '.join(REFUSAL_POLICIES)}, "
            f"not {policy!r}"
        )
    return str(policy)


def refusal_grade(case: Case, output: Output) -> Grade | None:
    """How a refusal scores on ``case``; None: its grader decides (``on_refusal: grade``)."""
    policy = refusal_policy(case)
    if policy == "fail":
        return Grade(0.0, False, f"refused: {_short(output.text)}")
    if policy == "pass":
        return Grade(1.0, True, f"refused, as the case expects: {_short(output.text)}")
    return None


def _short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


BUILTIN_GRADERS: Mapping[str, GraderSpec] = {
    "exact": GraderSpec(grade_exact),
    "contains": GraderSpec(grade_contains),
    "regex": GraderSpec(grade_regex),
    "json_valid": GraderSpec(grade_json_valid),
    "json_schema": GraderSpec(grade_json_schema),
    "numeric": GraderSpec(grade_numeric),
    "tool_call": GraderSpec(grade_tool_call),
    "similarity": GraderSpec(grade_similarity, 0.8, frozenset({"embed"})),
    "judge": GraderSpec(grade_judge, 0.7, frozenset({"judge"})),
    "pairwise": GraderSpec(grade_pairwise, 0.5, frozenset({"judge"})),
}


def _accept_grader(obj: object) -> GraderSpec | None:
    return GraderSpec(_custom(obj), 0.5) if callable(obj) else None


GRADERS = PluginKind(
    ENTRY_POINT_GROUP,
    "grader",
    "a callable grader(case, output) -> float | bool | Grade",
    _accept_grader,
)


@dataclass
class GraderRegistry:
    """Built-in graders, graders registered in code, and the ``modelyard.graders`` entry points
    (through ``core.plugins``: loaded only when a case names one). ``entries`` replaces the
    installed entry points (for tests)."""

    specs: dict[str, GraderSpec] = field(default_factory=dict)
    entries: Iterable[EntryPointLike] | None = None
    _plugins: Plugins[GraderSpec] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._plugins = Plugins(GRADERS, BUILTIN_GRADERS, self.entries)

    def register(self, name: str, fn: Callable[..., Any], *, threshold: float = 0.5) -> None:
        """Add a custom grader ``fn(case, output) -> float | Grade`` (sync or async)."""
        if name in BUILTIN_GRADERS:
            raise GraderError(f"grader {name!r} is built in and cannot be replaced")
        self.specs[name] = GraderSpec(_custom(fn), threshold)

    def get(self, name: str) -> GraderSpec:
        spec = self.specs.get(name)
        if spec is not None:
            return spec
        try:
            return self._plugins.get(name)
        except PluginError as exc:
            raise GraderError(str(exc)) from exc

    def check(self, cases: Sequence[Case], ctx: GraderContext) -> None:
        """Fail before any call when a case names an unknown grader or one missing its model."""
        for case in cases:
            try:
                spec = self.get(case.grader)
            except GraderError as exc:
                raise GraderError(f"{case.source}: grader: {exc}") from exc
            if "judge" in spec.needs and ctx.complete is None:
                raise GraderError(f"{case.source}: grader {case.grader!r} needs a judge deployment")
            if "embed" in spec.needs and ctx.embed is None:
                raise GraderError(f"{case.source}: grader {case.grader!r} needs an embedder")
            refusal_policy(case)

    async def grade(self, case: Case, output: Output, ctx: GraderContext) -> Grade:
        if output.refused:  # decided by the case, before (and usually instead of) its grader
            decided = refusal_grade(case, output)
            if decided is not None:
                return decided
        spec = self.get(case.grader)
        result = spec.fn(case, output, ctx)
        if inspect.isawaitable(result):
            result = await result
        return _as_grade(result, float(_option(case, "threshold", spec.threshold)), case)


def _custom(fn: Callable[..., Any]) -> GradeFn:
    def call(case: Case, output: Output, _: GraderContext) -> Any:
        return fn(case, output)

    return call


def _as_grade(result: Any, threshold: float, case: Case) -> Grade:
    if isinstance(result, Grade):
        score = result.score
        grade = result
    elif isinstance(result, int | float) and not isinstance(result, bool):
        score = float(result)
        grade = Grade(score, score >= threshold)
    elif isinstance(result, bool):
        grade = Grade(float(result), result)
        score = grade.score
    else:
        raise GraderError(f"grader {case.grader!r} returned {type(result).__name__}, not a score")
    if not 0.0 <= score <= 1.0 or math.isnan(score):
        raise GraderError(f"grader {case.grader!r} returned score {score}, outside 0..1")
    return grade
