"""Decode Gemini API request bodies (``generateContent``, ``countTokens``, ``embedContent``).

The model and whether to stream come from the URL (``models/{model}:streamGenerateContent``),
not the body. Every field is translated, passed on for Gemini upstreams, or refused with a 400
naming it (``generationConfig.responseModalities``):

* ``contents``/``systemInstruction``: see ``contents``.
* ``generationConfig``: ``temperature``, ``topP``, ``maxOutputTokens``, ``stopSequences``,
  ``candidateCount`` (``n``), ``seed``, ``responseMimeType`` + ``responseSchema`` /
  ``responseJsonSchema`` (``response_format``) are translated; ``topK``, ``presencePenalty``,
  ``frequencyPenalty`` travel as the extras ``top_k``, ``presence_penalty``,
  ``frequency_penalty``; ``thinkingConfig`` becomes the extra ``reasoning_effort`` (a level as
  it is; a budget: 0 → none, up to 1024 → low, up to 8192 → medium, more → high; -1, dynamic,
  is the model's default and asks for nothing); ``includeThoughts`` needs nothing (reasoning is
  returned as thought parts whenever the upstream reports it). ``responseModalities`` other
  than text, and every other generation field, are refused.
* ``tools``: ``functionDeclarations`` become tools (``parameters`` in Gemini's OpenAPI subset
  or ``parametersJsonSchema``); other tools (``googleSearch``, ``codeExecution``, ``urlContext``
  ...) travel in the extra ``gemini_tools``, which only Gemini upstreams take.
* ``toolConfig.functionCallingConfig``: ``AUTO``/``NONE``/``ANY`` → auto/none/required;
  ``ANY`` with one ``allowedFunctionNames`` → that tool; ``VALIDATED`` → auto.
* ``safetySettings`` → extra ``safety_settings`` (sent to Gemini upstreams; other vendors apply
  their own safety systems and ignore it). ``cachedContent`` → extra ``cached_content`` (Gemini
  upstreams only; refused elsewhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from modelyard.core.chat import (
    ChatRequest,
    NamedToolChoice,
    ResponseFormat,
    ToolChoice,
    ToolSpec,
)
from modelyard.core.embeddings import EmbeddingRequest
from modelyard.core.errors import InvalidRequest
from modelyard.protocols.gemini.contents import contents_messages, system_message
from modelyard.protocols.gemini.fields import fields
from modelyard.protocols.gemini.schema import openapi_to_json_schema
from modelyard.protocols.validate import (
    bad,
    each,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_number,
    get_str,
    nested,
)

DIALECT = "gemini"
# Extras only a Gemini upstream can honour; ``providers.extras.GEMINI_ONLY`` lists the same.
CACHED_CONTENT = "cached_content"
GEMINI_TOOLS = "gemini_tools"
_TOP_LEVEL = frozenset(
    {
        "contents", "systemInstruction", "generationConfig", "tools", "toolConfig",
        "safetySettings", "cachedContent", "model",
    }
)  # fmt: skip
# Each with its extra's name and its path in an error.
_EXTRA_NUMBERS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "topK": ("top_k", "generationConfig.topK"),
        "presencePenalty": ("presence_penalty", "generationConfig.presencePenalty"),
        "frequencyPenalty": ("frequency_penalty", "generationConfig.frequencyPenalty"),
    }
)
_GENERATION = frozenset(
    {
        "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount",
        "seed", "presencePenalty", "frequencyPenalty", "responseMimeType", "responseSchema",
        "responseJsonSchema", "thinkingConfig", "responseModalities",
    }
)  # fmt: skip
_DECLARATION = frozenset({"name", "description", "parameters", "parametersJsonSchema"})
_LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH")
_MODES: Final[Mapping[str, ToolChoice]] = MappingProxyType(
    {"AUTO": "auto", "VALIDATED": "auto", "NONE": "none", "ANY": "required"}
)


def model_name(raw: str) -> str:
    """A deployment name from the URL's ``{model}`` (``models/`` prefix allowed)."""
    return raw.removeprefix("models/")


def decode_generate(body: Any, model: str, stream: bool) -> ChatRequest:
    """A ``generateContent``/``streamGenerateContent`` body as a core request."""
    body = fields(body, "body")
    for key in body:
        if key not in _TOP_LEVEL:
            raise bad(
                key, f"is not supported; the fields taken are {', '.join(sorted(_TOP_LEVEL))}"
            )
    contents = get_list(body, "contents", "contents", required=True) or []
    if not contents:
        raise bad("contents", "must contain at least one content")
    messages = contents_messages(contents)
    system = system_message(body.get("systemInstruction"))
    if system is not None:
        messages.insert(0, system)
    request = ChatRequest(
        model=model, messages=messages, stream=stream, include_usage=stream, extra_origin=DIALECT
    )
    _generation(_object(body, "generationConfig", "generationConfig") or {}, request)
    _tools(get_list(body, "tools", "tools") or [], request)
    request.tool_choice = _tool_choice(_object(body, "toolConfig", "toolConfig"), request.tools)
    safety = get_list(body, "safetySettings", "safetySettings")
    if safety:
        request.extra["safety_settings"] = safety
    cached = get_str(body, "cachedContent", "cachedContent")
    if cached:
        request.extra[CACHED_CONTENT] = cached
    return request


def decode_count(body: Any, model: str) -> ChatRequest:
    """A ``countTokens`` body: ``contents``, or a whole ``generateContentRequest``."""
    body = fields(body, "body")
    inner = _object(body, "generateContentRequest", "generateContentRequest")
    if inner is not None:
        return decode_generate(inner, model, stream=False)
    return decode_generate({"contents": body.get("contents")}, model, stream=False)


def _object(obj: dict[str, Any], key: str, param: str) -> dict[str, Any] | None:
    """A nested object of the API (not a client's data), its keys in camelCase."""
    value = obj.get(key)
    return None if value is None else fields(value, param)


def _generation(config: dict[str, Any], request: ChatRequest) -> None:
    for key in config:
        if key not in _GENERATION:
            raise bad(f"generationConfig.{key}", "is not supported by this gateway")
    request.temperature = get_number(
        config, "temperature", "generationConfig.temperature", minimum=0, maximum=2
    )
    request.top_p = get_number(config, "topP", "generationConfig.topP", minimum=0, maximum=1)
    request.max_tokens = get_int(
        config, "maxOutputTokens", "generationConfig.maxOutputTokens", minimum=1
    )
    request.n = get_int(config, "candidateCount", "generationConfig.candidateCount", minimum=1)
    request.seed = get_int(config, "seed", "generationConfig.seed")
    stops = get_list(config, "stopSequences", "generationConfig.stopSequences") or []
    for i, stop in enumerate(stops):
        if not isinstance(stop, str):
            raise bad(f"generationConfig.stopSequences[{i}]", "must be a string")
    request.stop = tuple(stops)
    for key, (extra, param) in _EXTRA_NUMBERS.items():
        value = get_number(config, key, param)
        if value is not None:
            request.extra[extra] = int(value) if key == "topK" else value
    modalities = get_list(config, "responseModalities", "generationConfig.responseModalities")
    if any(m != "TEXT" for m in modalities or ()):
        raise bad("generationConfig.responseModalities", "only TEXT answers are supported")
    request.response_format = _response_format(config)
    thinking = _object(config, "thinkingConfig", "generationConfig.thinkingConfig")
    if thinking is not None:
        effort = _effort(thinking)
        if effort is not None:
            request.extra["reasoning_effort"] = effort


def _response_format(config: dict[str, Any]) -> ResponseFormat | None:
    p = "generationConfig"  # only formatted into an error's path
    mime = get_str(config, "responseMimeType", "generationConfig.responseMimeType")
    openapi = get_dict(config, "responseSchema", "generationConfig.responseSchema")
    schema = get_dict(config, "responseJsonSchema", "generationConfig.responseJsonSchema")
    if openapi is not None and schema is not None:
        raise bad(f"{p}.responseSchema", "give responseSchema or responseJsonSchema, not both")
    if openapi is not None:
        schema = openapi_to_json_schema(openapi, "generationConfig.responseSchema")
    if mime in (None, "text/plain"):
        if schema is not None:
            raise bad(f"{p}.responseMimeType", "must be application/json when a schema is given")
        return None
    if mime != "application/json":
        raise bad(f"{p}.responseMimeType", f"must be text/plain or application/json; got {mime!r}")
    if schema is None:
        return ResponseFormat("json_object")
    return ResponseFormat("json_schema", schema=schema, name="response")


def _effort(thinking: dict[str, Any]) -> str | None:
    p = "generationConfig.thinkingConfig"  # only formatted into an error's path
    get_bool(thinking, "includeThoughts", "generationConfig.thinkingConfig.includeThoughts")
    level = get_str(thinking, "thinkingLevel", "generationConfig.thinkingConfig.thinkingLevel")
    budget = get_int(
        thinking, "thinkingBudget", "generationConfig.thinkingConfig.thinkingBudget", minimum=-1
    )
    extra = set(thinking) - {"includeThoughts", "thinkingLevel", "thinkingBudget"}
    if extra:
        raise bad(f"{p}.{min(extra)}", "is not supported")
    if level is not None:
        if level.upper() not in _LEVELS:
            raise bad(f"{p}.thinkingLevel", f"must be one of {', '.join(_LEVELS)}; got {level!r}")
        return level.lower()
    if budget is None or budget == -1:
        return None
    if budget == 0:
        return "none"
    return "low" if budget <= 1024 else "medium" if budget <= 8192 else "high"


def _tools(raw: list[Any], request: ChatRequest) -> None:
    specs: list[ToolSpec] = []
    native: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        try:
            tool = fields(item, "")
            declarations = get_list(tool, "functionDeclarations", "functionDeclarations")
            if declarations is None:
                native.append(tool)
                continue
            if len(tool) > 1:
                raise bad("", "put functionDeclarations and other tools in separate tool objects")
            specs.extend(each(declarations, "functionDeclarations", _declaration))
        except InvalidRequest as exc:  # a field of the tool: named whole only now
            raise nested(f"tools[{i}]", exc) from None
    request.tools = tuple(specs)
    if native:
        request.extra[GEMINI_TOOLS] = native


def _declaration(raw: Any) -> ToolSpec:
    """One of a tool's ``functionDeclarations``; fields named relative to it (``each``)."""
    declaration = fields(raw, "")
    openapi = get_dict(declaration, "parameters", "parameters")
    schema = get_dict(declaration, "parametersJsonSchema", "parametersJsonSchema")
    if openapi is not None:
        schema = openapi_to_json_schema(openapi, "parameters")
    for key in declaration:
        if key not in _DECLARATION:
            raise bad(
                key, "is not supported (name, description, parameters or parametersJsonSchema are)"
            )
    return ToolSpec(
        name=get_str(declaration, "name", "name", required=True) or "",
        description=get_str(declaration, "description", "description"),
        parameters=schema if schema is not None else {"type": "object", "properties": {}},
    )


def _tool_choice(raw: dict[str, Any] | None, tools: tuple[ToolSpec, ...]) -> ToolChoice | None:
    if raw is None:
        return None
    p = "toolConfig.functionCallingConfig"  # a constant: no formatting per request
    config = _object(raw, "functionCallingConfig", p) or {}
    mode = (get_str(config, "mode", "toolConfig.functionCallingConfig.mode") or "AUTO").upper()
    if mode not in _MODES:
        raise bad(f"{p}.mode", f"must be one of {', '.join(_MODES)}; got {mode!r}")
    names = (
        get_list(
            config, "allowedFunctionNames", "toolConfig.functionCallingConfig.allowedFunctionNames"
        )
        or []
    )
    if not names:
        return _MODES[mode]
    if mode != "ANY":
        raise bad(f"{p}.allowedFunctionNames", "is only allowed with mode ANY")
    # (names of other types are refused below, not compared: they do not sort with strings)
    if all(isinstance(n, str) for n in names) and sorted(names) == sorted(t.name for t in tools):
        return "required"
    if len(names) == 1 and isinstance(names[0], str):
        return NamedToolChoice(names[0])
    raise bad(f"{p}.allowedFunctionNames", "must name one function, or all of them")


def decode_embed(body: Any, model: str) -> EmbeddingRequest:
    """An ``embedContent`` body as a core request."""
    return _embed(fields(body, "body"), model)


def _embed(body: dict[str, Any], model: str) -> EmbeddingRequest:
    """An ``embedContent`` body or one of ``batchEmbedContents``' requests (fields named
    relative to it: ``each`` names the request)."""
    known = {"model", "content", "taskType", "outputDimensionality", "title"}
    for key in body:
        if key not in known:
            raise bad(key, "is not supported")
    content = _object(body, "content", "content") or {}
    if not content:
        raise bad("content", "is required")
    parts = get_list(content, "parts", "content.parts", required=True) or []
    texts = each(parts, "content.parts", _embedded_text)
    request = EmbeddingRequest(
        model=model,
        inputs=["\n".join(texts)],
        dimensions=get_int(body, "outputDimensionality", "outputDimensionality", minimum=1),
    )
    task = get_str(body, "taskType", "taskType")
    if task:
        request.extra["task_type"] = task
    if get_str(body, "title", "title"):
        raise bad("title", "is not supported")
    return request


def _embedded_text(raw: Any) -> str:
    part = fields(raw, "")
    text = get_str(part, "text", "text")
    if text is None or len(part) != 1:
        raise bad("", "only text parts can be embedded")
    return text


def decode_batch_embed(body: Any, model: str) -> EmbeddingRequest:
    """``batchEmbedContents``: one core request for all of them (same model and options)."""
    body = fields(body, "body")
    raw = get_list(body, "requests", "requests", required=True) or []
    if not raw:
        raise bad("requests", "must contain at least one request")
    parts = each(raw, "requests", lambda item: _embed(fields(item, ""), model))
    first = parts[0]
    for i, other in enumerate(parts[1:], start=1):
        if other.dimensions != first.dimensions or other.extra != first.extra:
            raise bad(
                f"requests[{i}]",
                "every request must ask for the same taskType and outputDimensionality",
            )
    inputs: list[str] = [text for part in parts for text in part.inputs if isinstance(text, str)]
    return EmbeddingRequest(
        model=model, inputs=inputs, dimensions=first.dimensions, extra=first.extra
    )
