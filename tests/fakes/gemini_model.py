"""The fake Gemini's "model": deterministic answers to ``generateContent`` bodies.

How an answer is chosen (first rule that applies):

* ``tools`` declared, ``functionCallingConfig.mode`` not ``NONE`` and the last turn is a user
  turn without function responses: one ``functionCall`` part per declared function (only the
  ``allowedFunctionNames`` ones when given), ``args`` sampled from its parameter schema (a
  string property ``city`` is ``"Paris"``, other strings ``"x"``, numbers 1, booleans true). The
  first call of each candidate carries a ``thoughtSignature``, as Gemini 3 does.
* The last turn holds ``functionResponse`` parts: ``"tool said: "`` + each response (its
  ``output`` when that is all it holds, else its JSON), joined by ``" | "``.
* Otherwise ``"echo: "`` + the text of the last user turn.

``responseMimeType: application/json`` turns the text into JSON (a sample of the schema, or
``{"answer": text}`` without one); ``stopSequences`` cut the text; ``maxOutputTokens`` keeps that
many words with ``MAX_TOKENS``. With a ``thinkingConfig`` (and a budget other than 0) the model
"thinks" ``"thinking about: <last user text>"``: counted in ``thoughtsTokenCount`` and returned
as a ``thought: true`` part when ``includeThoughts`` is set. Tokens are whitespace-separated
words; an inline image counts 258, like a small image on the real API; tool declarations are
not counted.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .gemini_wire import JSONObject
from .openai_schema import sample_for_schema
from .openai_wire import count_tokens, split_words

IMAGE_TOKENS = 258


@dataclass(frozen=True, slots=True)
class Candidate:
    index: int
    thought: str | None  # returned to the client only when ``include_thoughts``
    text: str | None
    calls: tuple[JSONObject, ...]  # ``functionCall`` parts, signature included
    finish: str


@dataclass(frozen=True, slots=True)
class Answer:
    response_id: str
    model: str
    candidates: tuple[Candidate, ...]
    include_thoughts: bool
    usage: JSONObject


def signature_for(name: str) -> str:
    """The thought signature the fake attaches to a call of ``name`` (and later expects back)."""
    return base64.b64encode(hashlib.sha256(f"signature:{name}".encode()).digest()).decode()


def build_answer(model: str, body: Mapping[str, Any], response_id: str, cached: int) -> Answer:
    contents: list[Mapping[str, Any]] = body["contents"]
    config: Mapping[str, Any] = body.get("generationConfig") or {}
    thinking: Mapping[str, Any] = config.get("thinkingConfig") or {}
    thinks = bool(thinking) and thinking.get("thinkingBudget") != 0
    thought = "thinking about: " + _last_user_text(contents) if thinks else None
    calls = _planned_calls(body, contents)
    candidates: list[Candidate] = []
    for index in range(int(config.get("candidateCount") or 1)):
        if calls:
            candidates.append(Candidate(index, thought, None, calls, "STOP"))
        else:
            text, finish = _limit(_formatted(_reply(contents), config), config)
            candidates.append(Candidate(index, thought, text, (), finish))
    return Answer(
        response_id=response_id,
        model=model,
        candidates=tuple(candidates),
        include_thoughts=bool(thinking.get("includeThoughts")),
        usage=usage(body, candidates, cached),
    )


def usage(body: Mapping[str, Any], candidates: list[Candidate], cached: int) -> JSONObject:
    prompt = prompt_tokens(body)
    output = sum(count_tokens(c.text or "") + _call_tokens(c.calls) for c in candidates)
    thoughts = sum(count_tokens(c.thought or "") for c in candidates)
    result: JSONObject = {
        "promptTokenCount": prompt,
        "totalTokenCount": prompt + output + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    # Google's JSON leaves out zero counts, so clients must treat a missing count as 0.
    for key, value in (
        ("candidatesTokenCount", output),
        ("thoughtsTokenCount", thoughts),
        ("cachedContentTokenCount", min(cached, prompt)),
    ):
        if value:
            result[key] = value
    return result


def prompt_tokens(body: Mapping[str, Any]) -> int:
    system = body.get("systemInstruction") or body.get("system_instruction") or {}
    turns = [system, *(body.get("contents") or [])]
    return sum(_part_tokens(part) for turn in turns for part in turn.get("parts") or [])


def _part_tokens(part: Mapping[str, Any]) -> int:
    if "inlineData" in part:
        return IMAGE_TOKENS
    if "functionCall" in part:
        return _call_tokens((part,))
    if "functionResponse" in part:
        return count_tokens(orjson.dumps(part["functionResponse"].get("response")).decode())
    return count_tokens(str(part.get("text", "")))


def _call_tokens(calls: tuple[Mapping[str, Any], ...]) -> int:
    return sum(
        count_tokens(f"{c['functionCall']['name']} {orjson.dumps(c['functionCall']['args'])!r}")
        for c in calls
    )


def _last_user_text(contents: list[Mapping[str, Any]]) -> str:
    for content in reversed(contents):
        if content.get("role", "user") == "user":
            parts = content.get("parts") or []
            texts = [p["text"] for p in parts if isinstance(p.get("text"), str)]
            if texts:
                return " ".join(texts)
    return ""


def _responses(content: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [p["functionResponse"] for p in content.get("parts") or [] if "functionResponse" in p]


def _planned_calls(
    body: Mapping[str, Any], contents: list[Mapping[str, Any]]
) -> tuple[JSONObject, ...]:
    declarations = [
        declaration
        for tool in body.get("tools") or []
        for declaration in tool.get("functionDeclarations") or []
    ]
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    last = contents[-1]
    if not declarations or calling.get("mode") == "NONE":
        return ()
    if last.get("role", "user") != "user" or _responses(last):
        return ()
    allowed = calling.get("allowedFunctionNames")
    if allowed:
        declarations = [d for d in declarations if d.get("name") in allowed]
    calls: list[JSONObject] = []
    for declaration in declarations:
        schema = declaration.get("parametersJsonSchema") or _lowered(declaration.get("parameters"))
        args = sample_for_schema(schema) if isinstance(schema, Mapping) else {}
        part: JSONObject = {"functionCall": {"name": declaration["name"], "args": args}}
        if not calls:
            part["thoughtSignature"] = signature_for(declaration["name"])
        calls.append(part)
    return tuple(calls)


def _lowered(schema: object) -> object:
    """Gemini's OpenAPI ``Schema`` spells types in capitals; the sampler wants JSON Schema."""
    if isinstance(schema, Mapping):
        return {
            key: value.lower() if key == "type" and isinstance(value, str) else _lowered(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_lowered(item) for item in schema]
    return schema


def _reply(contents: list[Mapping[str, Any]]) -> str:
    responses = _responses(contents[-1])
    if responses:
        return "tool said: " + " | ".join(_rendered(r.get("response")) for r in responses)
    return "echo: " + _last_user_text(contents)


def _rendered(response: object) -> str:
    if isinstance(response, Mapping) and set(response) == {"output"}:
        output = response["output"]
        return output if isinstance(output, str) else orjson.dumps(output).decode()
    return orjson.dumps(response).decode()


def _formatted(text: str, config: Mapping[str, Any]) -> str:
    if config.get("responseMimeType") != "application/json":
        return text
    schema = config.get("responseJsonSchema") or _lowered(config.get("responseSchema"))
    if isinstance(schema, Mapping):
        return orjson.dumps(sample_for_schema(schema)).decode()
    return orjson.dumps({"answer": text}).decode()


def _limit(text: str, config: Mapping[str, Any]) -> tuple[str, str]:
    for stop in config.get("stopSequences") or []:
        if stop and stop in text:
            text = text[: text.index(stop)]
    limit = config.get("maxOutputTokens")
    words = split_words(text)
    if isinstance(limit, int) and 0 <= limit < len(words):
        return "".join(words[:limit]), "MAX_TOKENS"
    return text, "STOP"
