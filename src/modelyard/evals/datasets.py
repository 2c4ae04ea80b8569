"""Evaluation datasets: JSONL, one case a line.

The simplest line::

    {"input": "What is the capital of France?", "expected": "Paris", "grader": "contains"}

Fields of a line:

* ``input``: a prompt (string) or a list of chat messages ``{"role", "content"}`` whose
  content is a string or a list of ``{"type": "text", "text": ...}`` parts. ``messages`` is
  accepted as another name for a message list. ``system`` adds a system prompt.
* ``tools``: optional function tools, ``{"type": "function", "function": {...}}`` or flat
  ``{"name", "description", "parameters"}``.
* What to check, for the grader: ``expected`` (a string, a number, or tool calls
  ``[{"name", "arguments"}]``), ``regex``, ``schema`` (a JSON schema), ``rubric`` (for a judge),
  ``reference`` (a reference answer for similarity or a judge).
* ``grader``: a grader name; ``grader_options`` (or ``options``): its options. Without a grader
  name one is inferred from what is given (see ``_infer_grader``).
* ``id``: optional; otherwise a stable id is derived from the line's content, so resuming a run
  recognises cases even when lines move.
* ``max_tokens`` and ``temperature``: optional request parameters.

Every error names ``file:line`` and the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from modelyard.core.chat import Message, Role, TextPart, ToolSpec

_ROLES: tuple[Role, ...] = ("system", "developer", "user", "assistant", "tool")
_KNOWN_FIELDS = frozenset(
    {
        "id",
        "input",
        "messages",
        "system",
        "tools",
        "expected",
        "regex",
        "schema",
        "rubric",
        "reference",
        "grader",
        "grader_options",
        "options",
        "max_tokens",
        "temperature",
        "metadata",
    }
)


class DatasetError(ValueError):
    """A dataset line that cannot be used; the message starts with ``file:line``."""


@dataclass(frozen=True, slots=True)
class Case:
    """One evaluation case: what to ask and how to check the answer."""

    id: str
    messages: tuple[Message, ...]
    grader: str
    tools: tuple[ToolSpec, ...] = ()
    expected: Any = None
    regex: str | None = None
    schema: Mapping[str, Any] | None = None
    rubric: str | None = None
    reference: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    max_tokens: int | None = None
    temperature: float | None = None
    source: str = ""

    def prompt_text(self) -> str:
        """The text of the last user message (what a judge is shown as the question)."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text()
        return self.messages[-1].text() if self.messages else ""


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    cases: tuple[Case, ...]
    path: str = ""

    def __len__(self) -> int:
        return len(self.cases)


def load_dataset(path: str | Path) -> Dataset:
    """Read a JSONL dataset file (blocking: call it in a thread from async code)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    return parse_dataset(text, name=p.stem, source=str(p))


def parse_dataset(text: str, *, name: str, source: str = "<dataset>") -> Dataset:
    """Parse JSONL text; blank lines and lines starting with ``#`` or ``//`` are skipped."""
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for number, line in _lines(text):
        where = f"{source}:{number}"
        case = parse_case(_decode(line, where), where)
        if case.id in seen:
            raise DatasetError(f"{where}: id: {case.id!r} already used at {seen[case.id]}")
        seen[case.id] = where
        cases.append(case)
    if not cases:
        raise DatasetError(f"{source}: the dataset has no cases")
    return Dataset(name=name, cases=tuple(cases), path=source)


def bundled_datasets() -> list[str]:
    """Names of the example datasets shipped with the package."""
    folder = resources.files("modelyard.evals") / "datasets"
    return sorted(
        p.name.removesuffix(".jsonl") for p in folder.iterdir() if p.name.endswith(".jsonl")
    )


def load_bundled(name: str) -> Dataset:
    """A shipped example dataset by name (``smoke``, ...)."""
    resource = resources.files("modelyard.evals") / "datasets" / f"{name}.jsonl"
    if not resource.is_file():
        known = ", ".join(bundled_datasets())
        raise DatasetError(f"{name}: no such bundled dataset; known: {known}")
    return parse_dataset(resource.read_text("utf-8"), name=name, source=f"bundled:{name}.jsonl")


def resolve_dataset(spec: str) -> Dataset:
    """A file path, or the name of a bundled dataset when no such file exists."""
    path = Path(spec)
    if path.exists() or (spec.endswith(".jsonl") and "/" in spec):
        return load_dataset(path)
    return load_bundled(spec)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith(("#", "//")):
            yield number, line


def _decode(line: str, where: str) -> Mapping[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise DatasetError(f"{where}: not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise DatasetError(f"{where}: a case must be a JSON object, not {type(value).__name__}")
    return value


def parse_case(raw: Mapping[str, Any], where: str) -> Case:
    """One case from a decoded line; ``where`` (``file:line``) prefixes every error."""
    unknown = sorted(set(raw) - _KNOWN_FIELDS)
    if unknown:
        known = ", ".join(sorted(_KNOWN_FIELDS))
        raise DatasetError(f"{where}: {unknown[0]}: unknown field; known: {known}")
    messages = _messages(raw, where)
    options = raw.get("grader_options", raw.get("options")) or {}
    if not isinstance(options, dict):
        raise DatasetError(f"{where}: grader_options: must be an object")
    grader = raw.get("grader") or _infer_grader(raw)
    if not isinstance(grader, str) or not grader:
        raise DatasetError(
            f"{where}: grader: missing, and nothing to infer it from "
            "(give expected, regex, schema, rubric or reference)"
        )
    return Case(
        id=_case_id(raw, where),
        messages=messages,
        grader=grader,
        tools=_tools(raw.get("tools"), where),
        expected=raw.get("expected"),
        regex=_opt_str(raw, "regex", where),
        schema=_opt_object(raw, "schema", where),
        rubric=_opt_str(raw, "rubric", where),
        reference=_opt_str(raw, "reference", where),
        options=options,
        max_tokens=_opt_int(raw, "max_tokens", where),
        temperature=_opt_float(raw, "temperature", where),
        source=where,
    )


def _infer_grader(raw: Mapping[str, Any]) -> str | None:
    expected = raw.get("expected")
    if isinstance(expected, list) and all(isinstance(c, dict) for c in expected) and expected:
        return "tool_call"
    if isinstance(expected, bool):
        return "exact"
    if isinstance(expected, int | float):
        return "numeric"
    if isinstance(expected, str):
        return "exact"
    for name, grader in (
        ("regex", "regex"),
        ("schema", "json_schema"),
        ("rubric", "judge"),
        ("reference", "similarity"),
    ):
        if raw.get(name) is not None:
            return grader
    return None


def _case_id(raw: Mapping[str, Any], where: str) -> str:
    given = raw.get("id")
    if given is not None:
        if not isinstance(given, str | int) or isinstance(given, bool) or str(given) == "":
            raise DatasetError(f"{where}: id: must be a non-empty string or an integer")
        return str(given)
    digest = hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"c{digest[:12]}"


def _messages(raw: Mapping[str, Any], where: str) -> tuple[Message, ...]:
    key = "input" if "input" in raw else "messages"
    value = raw.get(key)
    system = _opt_str(raw, "system", where)
    head = (Message(role="system", content=(TextPart(system),)),) if system else ()
    if isinstance(value, str):
        if not value:
            raise DatasetError(f"{where}: {key}: must not be empty")
        return (*head, Message(role="user", content=(TextPart(value),)))
    if isinstance(value, list) and value:
        return (*head, *(_message(m, f"{where}: {key}[{i}]") for i, m in enumerate(value)))
    if value is None:
        raise DatasetError(f"{where}: input: missing (a prompt string or a list of messages)")
    raise DatasetError(
        f"{where}: {key}: must be a non-empty string or a non-empty list of messages"
    )


def _message(raw: Any, where: str) -> Message:
    if not isinstance(raw, dict):
        raise DatasetError(f"{where}: must be an object with role and content")
    role = raw.get("role")
    if role not in _ROLES:
        raise DatasetError(f"{where}.role: must be one of {', '.join(_ROLES)}; got {role!r}")
    content = raw.get("content")
    if isinstance(content, str):
        parts: tuple[TextPart, ...] = (TextPart(content),)
    elif isinstance(content, list):
        parts = tuple(_part(p, f"{where}.content[{i}]") for i, p in enumerate(content))
    else:
        raise DatasetError(f"{where}.content: must be a string or a list of text parts")
    return Message(role=role, content=parts, name=raw.get("name"))


def _part(raw: Any, where: str) -> TextPart:
    if (
        isinstance(raw, dict)
        and raw.get("type", "text") == "text"
        and isinstance(raw.get("text"), str)
    ):
        return TextPart(raw["text"])
    raise DatasetError(f'{where}: must be a text part {{"type": "text", "text": ...}}')


def _tools(raw: Any, where: str) -> tuple[ToolSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DatasetError(f"{where}: tools: must be a list")
    specs: list[ToolSpec] = []
    for i, item in enumerate(raw):
        fn = item.get("function", item) if isinstance(item, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise DatasetError(f"{where}: tools[{i}].name: missing")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise DatasetError(f"{where}: tools[{i}].parameters: must be a JSON schema object")
        specs.append(
            ToolSpec(name=fn["name"], description=fn.get("description"), parameters=params)
        )
    return tuple(specs)


def _opt_str(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise DatasetError(f"{where}: {key}: must be a string")
    return value


def _opt_object(raw: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, dict):
        raise DatasetError(f"{where}: {key}: must be a JSON schema object")
    return value


def _opt_int(raw: Mapping[str, Any], key: str, where: str) -> int | None:
    value = raw.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise DatasetError(f"{where}: {key}: must be a positive integer")
    return value


def _opt_float(raw: Mapping[str, Any], key: str, where: str) -> float | None:
    value = raw.get(key)
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise DatasetError(f"{where}: {key}: must be a number")
    return float(value) if value is not None else None
