"""Build Gemini ``generateContent`` request bodies from core chat requests.

Mapping decisions (where the two APIs differ):

* ``max_tokens``/``temperature``/``top_p``/``stop``/``seed``/``n`` go to ``generationConfig``
  (``maxOutputTokens``, ``temperature``, ``topP``, ``stopSequences``, ``seed``, ``candidateCount``).
* ``json_object`` sets ``responseMimeType: application/json``; ``json_schema`` adds the schema as
  ``responseJsonSchema`` (standard JSON Schema, see ``schema.py``), not ``responseSchema`` (an
  OpenAPI subset that rejects common JSON Schema such as ``"type": ["string", "null"]``).
* Tools are ``functionDeclarations`` whose parameters go in ``parametersJsonSchema`` for the
  same reason. ``tool_choice``: ``auto``/``none``/``required`` → ``AUTO``/``NONE``/``ANY``; a
  named function → ``ANY`` with ``allowedFunctionNames``.
* Extra fields Gemini can honour: ``reasoning_effort`` (→ ``thinkingConfig``), ``top_k``,
  ``frequency_penalty``, ``presence_penalty`` and ``safety_settings`` (Gemini's own list, passed
  through), and from Gemini-dialect clients ``cached_content`` (→ ``cachedContent``) and
  ``gemini_tools`` (Gemini's own tools, appended to ``tools``). An extra field set to nothing
  (null, false, ``{}``, ``[]``) asks for nothing and is ignored; any other
  extra field (``logit_bias``, ``logprobs``, ...) is an ``InvalidRequest``.
* ``user`` and ``metadata`` have no Gemini counterpart and are not sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from modelyard.core.chat import ChatRequest, NamedToolChoice, ResponseFormat, ToolChoice, ToolSpec
from modelyard.core.errors import InvalidRequest
from modelyard.providers.base import encode_body
from modelyard.providers.extras import refuse_native_tools
from modelyard.providers.gemini.contents import build_contents
from modelyard.providers.gemini.schema import convert_schema
from modelyard.providers.messages_fields import foreign_extras

ThinkingMode = Literal["auto", "level", "budget"]
THINKING_MODES: tuple[ThinkingMode, ...] = ("auto", "level", "budget")

# Gemini's rule for function names (letters, digits, _ . : -, not starting with a digit).
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}")
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
# Gemini 3 takes a thinking level; Gemini 2.5 only a token budget (its documented ranges:
# Pro 128-32768, Flash 0-24576, Flash-Lite 512-24576), so each effort maps to both.
_LEVELS = {
    "none": "MINIMAL", "minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH",
    "xhigh": "HIGH",
}  # fmt: skip
_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576}


@dataclass(slots=True)
class _Build:
    model: str
    thinking: ThinkingMode
    body: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def build_body(request: ChatRequest, model: str, thinking: ThinkingMode = "auto") -> bytes:
    """The JSON body for ``generateContent``/``streamGenerateContent`` (same body for both)."""
    build = _Build(model, thinking)
    contents, system = build_contents(request.messages, model)
    if not contents:
        raise InvalidRequest(
            "Gemini needs at least one user or assistant message with content", param="messages"
        )
    build.body["contents"] = contents
    if system is not None:
        build.body["systemInstruction"] = system
    if request.tools:
        refuse_native_tools(request, "gemini", "Gemini API")
        build.body["tools"] = [{"functionDeclarations": _declarations(request.tools)}]
    tool_config = _tool_config(request.tool_choice, request.tools)
    if tool_config is not None:
        build.body["toolConfig"] = tool_config
    _generation(request, build.config)
    for key, value in foreign_extras(request, "gemini").items():
        _extra(key, value, build)
    if build.config:
        build.body["generationConfig"] = build.config
    return encode_body(build.body)


def single_tool_call(request: ChatRequest) -> bool:
    """Gemini has no switch for parallel calls: the answer is trimmed to one call instead."""
    return request.parallel_tool_calls is False


def _generation(r: ChatRequest, config: dict[str, Any]) -> None:
    for key, value in (
        ("maxOutputTokens", r.max_tokens),
        ("temperature", r.temperature),
        ("topP", r.top_p),
        ("seed", r.seed),
        ("candidateCount", r.n),
    ):
        if value is not None:
            config[key] = value
    if r.stop:
        config["stopSequences"] = list(r.stop)
    if r.response_format is not None:
        _response_format(r.response_format, config)


def _response_format(fmt: ResponseFormat, config: dict[str, Any]) -> None:
    if fmt.kind == "text":
        return
    config["responseMimeType"] = "application/json"
    if fmt.kind == "json_schema" and fmt.schema is not None:
        config["responseJsonSchema"] = convert_schema(
            fmt.schema, strict=bool(fmt.strict), param="response_format.json_schema.schema"
        )


def _declarations(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    declarations: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        param = f"tools[{i}].function"
        if not _FUNCTION_NAME.fullmatch(tool.name):
            raise InvalidRequest(
                f"function name {tool.name!r} is not valid for Gemini: it must start with a "
                "letter or underscore and use only letters, digits, _ . : - (at most 128)",
                param=f"{param}.name",
            )
        declaration: dict[str, Any] = {"name": tool.name}
        if tool.description:
            declaration["description"] = tool.description
        if tool.parameters is not None:
            declaration["parametersJsonSchema"] = convert_schema(
                tool.parameters, strict=bool(tool.strict), param=f"{param}.parameters"
            )
        declarations.append(declaration)
    return declarations


def _tool_config(choice: ToolChoice | None, tools: Sequence[ToolSpec]) -> dict[str, Any] | None:
    if choice is None:
        return None
    forcing = choice == "required" or isinstance(choice, NamedToolChoice)
    if not tools:
        if forcing:
            raise InvalidRequest(
                "tool_choice forces a tool call but no tools were given", param="tool_choice"
            )
        return None
    if isinstance(choice, NamedToolChoice):
        if choice.name not in {t.name for t in tools}:
            raise InvalidRequest(
                f"tool_choice names function {choice.name!r}, which is not among the tools",
                param="tool_choice",
            )
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice.name]}}
    return {"functionCallingConfig": {"mode": _MODES[choice]}}


def thinking_config(effort: object, model: str, mode: ThinkingMode) -> dict[str, Any]:
    """``thinkingConfig`` for an OpenAI-style ``reasoning_effort``."""
    if not isinstance(effort, str) or effort not in _LEVELS:
        raise InvalidRequest(
            f"reasoning_effort must be one of {', '.join(_LEVELS)}; got {effort!r}",
            param="reasoning_effort",
        )
    name = model.rsplit("/", 1)[-1]
    by_budget = mode == "budget" or (mode == "auto" and name.startswith(("gemini-1", "gemini-2")))
    config: dict[str, Any] = (
        {"thinkingBudget": _BUDGETS[effort]} if by_budget else {"thinkingLevel": _LEVELS[effort]}
    )
    if effort != "none":
        # Whoever asks for an effort wants to see the reasoning; summaries cost no extra tokens.
        config["includeThoughts"] = True
    return config


def _extra(key: str, value: object, build: _Build) -> None:
    if value is None or value is False or value in ({}, []):
        return
    handler = _EXTRAS.get(key)
    if handler is None:
        raise InvalidRequest(
            f"{key!r} is not supported by Gemini upstreams", param=key, code="unsupported_parameter"
        )
    handler(key, value, build)


def _reasoning(_key: str, value: object, build: _Build) -> None:
    build.config["thinkingConfig"] = thinking_config(value, build.model, build.thinking)


def _thinking(key: str, value: object, build: _Build) -> None:
    """A Messages client's ``thinking``: an explicit budget is kept, the rest is the default."""
    if not isinstance(value, dict):
        raise InvalidRequest(f"{key} must be an object", param=key)
    budget = value.get("budget_tokens")
    if value.get("type") == "enabled" and isinstance(budget, int):
        build.config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": True}


def _number(target: str, *, integer: bool) -> Callable[[str, object, _Build], None]:
    def handle(key: str, value: object, build: _Build) -> None:
        kinds: tuple[type, ...] = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            expected = "an integer" if integer else "a number"
            raise InvalidRequest(f"{key} must be {expected}", param=key)
        build.config[target] = value

    return handle


def _safety(key: str, value: object, build: _Build) -> None:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidRequest(f"{key} must be a list of Gemini safety settings", param=key)
    build.body["safetySettings"] = value


def _cached_content(key: str, value: object, build: _Build) -> None:
    if not isinstance(value, str):
        raise InvalidRequest(f"{key} must be a cachedContents/... resource name", param=key)
    build.body["cachedContent"] = value


def _gemini_tools(key: str, value: object, build: _Build) -> None:
    """Gemini's own tools (googleSearch, codeExecution...) from a Gemini-dialect client."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidRequest(f"{key} must be a list of Gemini tool objects", param=key)
    build.body.setdefault("tools", []).extend(value)


_EXTRAS: dict[str, Callable[[str, object, _Build], None]] = {
    "cached_content": _cached_content,
    "gemini_tools": _gemini_tools,
    "reasoning_effort": _reasoning,
    "thinking": _thinking,
    "top_k": _number("topK", integer=True),
    "frequency_penalty": _number("frequencyPenalty", integer=False),
    "presence_penalty": _number("presencePenalty", integer=False),
    "safety_settings": _safety,
}
