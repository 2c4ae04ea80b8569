"""The fake's "model": deterministic Chat Completions answers and the non-streamed body.

How an answer is chosen (first rule that applies):

* ``tools`` present, ``tool_choice`` not ``"none"`` and the last message is from the user: one
  tool call per function tool (only the first, or the forced one, when ``parallel_tool_calls``
  is false or ``tool_choice`` names a function), arguments sampled from its parameter schema.
* The conversation ends with ``tool`` messages: ``"tool said: " + their contents`` (joined by
  ``" | "`` when several results follow one parallel call).
* The last user message contains ``"please refuse"``: a refusal (``message.refusal`` set to
  ``REFUSAL``, ``content`` null, finish reason ``stop``), as a structured-outputs refusal reads.
* Otherwise ``"echo: " + <text of the last user message>``.

With ``logprobs: true`` each choice carries ``logprobs`` (``content``, or ``refusal`` for a
refusal): one entry per word token with ``top_logprobs`` alternatives (``top_logprobs`` of
them). With ``web_search_options`` the text answer cites a source: ``message.annotations``
holds one ``url_citation`` spanning the text (``CITED_URL``), as the search models write it.

``response_format`` turns the text into JSON (``{"answer": text}`` for ``json_object``, a schema
sample for ``json_schema``); then ``stop`` cuts the text before the first stop sequence and
``max_completion_tokens``/``max_tokens`` keep that many words with finish reason ``length``.
Tokens are whitespace-separated words (see ``openai_wire.count_tokens``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from .openai_schema import sample_for_schema
from .openai_wire import (
    IdFactory,
    JSONObject,
    count_tokens,
    fingerprint,
    invalid_value,
    missing_parameter,
    split_words,
)


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


REFUSAL = "I'm sorry, I can't help with that request."
CITED_URL = "https://example.com/source"
_REFUSE_TRIGGER = "please refuse"


@dataclass(frozen=True, slots=True)
class Choice:
    index: int
    content: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    refusal: str | None = None


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """Everything both the JSON body and the SSE stream are rendered from."""

    id: str
    created: int
    model: str
    system_fingerprint: str
    choices: tuple[Choice, ...]
    usage: JSONObject
    # ``top_logprobs`` when the request asked for ``logprobs`` (0 without it), else None.
    logprobs: int | None = None
    cited: bool = False  # the request named ``web_search_options``


def validate_chat_request(body: Mapping[str, Any]) -> Response | None:
    """Reject what the real endpoint rejects before generating, with its error shape."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return missing_parameter("model")
    messages = body.get("messages")
    if messages is None:
        return missing_parameter("messages")
    if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
        return invalid_value("messages", "expected an array of message objects.", "invalid_type")
    if not messages:
        return invalid_value(
            "messages",
            "empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "empty_array",
        )
    n = body.get("n", 1)
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128):
        return invalid_value("n", f"expected an integer between 1 and 128, but got {n!r}.")
    if body.get("stream_options") is not None and not body.get("stream"):
        return invalid_value(
            "stream_options", "this parameter is only allowed when 'stream' is enabled."
        )
    top = body.get("top_logprobs")
    if top is not None:
        if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= 20:
            return invalid_value(
                "top_logprobs", f"expected an integer between 0 and 20, got {top!r}."
            )
        if body.get("logprobs") is not True:
            return invalid_value(
                "top_logprobs", "'logprobs' must be set to true if 'top_logprobs' is used."
            )
    return None


def build_answer(body: Mapping[str, Any], ids: IdFactory) -> ChatAnswer:
    messages: list[Mapping[str, Any]] = body["messages"]
    n = body.get("n") or 1
    calls = _planned_tool_calls(body, messages)
    choices: list[Choice] = []
    for index in range(n):
        if calls:
            made = tuple(ToolCall(ids.tool_call(), name, args) for name, args in calls)
            choices.append(Choice(index, None, made, "tool_calls"))
        elif _REFUSE_TRIGGER in _last_user_text(messages).lower():
            choices.append(Choice(index, None, (), "stop", REFUSAL))
        else:
            text, finish = _limit(_reply_text(body, messages), body)
            choices.append(Choice(index, text, (), finish))
    model = str(body["model"])
    return ChatAnswer(
        id=ids.completion(),
        created=int(time.time()),
        model=model,
        system_fingerprint=fingerprint(model),
        choices=tuple(choices),
        usage=_usage(messages, choices),
        logprobs=int(body.get("top_logprobs") or 0) if body.get("logprobs") is True else None,
        cited=body.get("web_search_options") is not None,
    )


def token_logprobs(text: str, top: int) -> list[JSONObject]:
    """Log probabilities of ``text``'s word tokens, each with ``top`` alternatives (the token
    itself first): deterministic, so tests can predict them."""
    entries: list[JSONObject] = []
    for position, word in enumerate(split_words(text)):
        logprob = -round(0.01 * (position + 1), 4)
        alternatives = [word] + [f"{word.strip()}#{n}" for n in range(1, top)]
        entries.append(
            {
                "token": word,
                "logprob": logprob,
                "bytes": list(word.encode()),
                "top_logprobs": [
                    {"token": alt, "logprob": logprob - n, "bytes": list(alt.encode())}
                    for n, alt in enumerate(alternatives[:top])
                ],
            }
        )
    return entries


def choice_logprobs(choice: Choice, top: int, text: str | None = None) -> JSONObject:
    """A choice's ``logprobs`` object (of ``text``, a piece of it, when given)."""
    if choice.refusal is not None:
        return {"content": None, "refusal": token_logprobs(text or choice.refusal, top)}
    return {"content": token_logprobs(text or choice.content or "", top), "refusal": None}


def citation(text: str) -> JSONObject:
    """The ``url_citation`` annotation the fake's search answers carry: all of ``text``."""
    span = {"end_index": len(text), "start_index": 0, "url": CITED_URL, "title": "A source"}
    return {"type": "url_citation", "url_citation": span}


def completion_body(answer: ChatAnswer) -> JSONObject:
    return {
        "id": answer.id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "choices": [_choice_body(answer, choice) for choice in answer.choices],
        "usage": answer.usage,
        "service_tier": "default",
        "system_fingerprint": answer.system_fingerprint,
    }


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        ]
        return " ".join(texts)
    return ""


def _choice_body(answer: ChatAnswer, choice: Choice) -> JSONObject:
    cited = answer.cited and choice.content is not None
    message: JSONObject = {
        "role": "assistant",
        "content": choice.content,
        "refusal": choice.refusal,
        "annotations": [citation(choice.content or "")] if cited else [],
    }
    if choice.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in choice.tool_calls
        ]
    top = answer.logprobs
    return {
        "index": choice.index,
        "message": message,
        "logprobs": None if top is None else choice_logprobs(choice, top),
        "finish_reason": choice.finish_reason,
    }


def _last_user_text(messages: list[Mapping[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return message_text(users[-1]) if users else ""


def _planned_tool_calls(
    body: Mapping[str, Any], messages: list[Mapping[str, Any]]
) -> list[tuple[str, str]]:
    tools = [
        tool["function"]
        for tool in body.get("tools") or []
        if isinstance(tool, Mapping)
        and tool.get("type", "function") == "function"
        and isinstance(tool.get("function"), Mapping)
    ]
    choice = body.get("tool_choice")
    if not tools or choice == "none" or messages[-1].get("role") != "user":
        return []
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        forced = choice["function"].get("name")
        tools = [tool for tool in tools if tool.get("name") == forced] or tools[:1]
    if body.get("parallel_tool_calls") is False:
        tools = tools[:1]
    return [(str(tool.get("name", "")), _arguments(tool)) for tool in tools]


def _arguments(function: Mapping[str, Any]) -> str:
    schema = function.get("parameters")
    value = sample_for_schema(schema) if isinstance(schema, Mapping) else {}
    return orjson.dumps(value if isinstance(value, dict) else {}).decode()


def _reply_text(body: Mapping[str, Any], messages: list[Mapping[str, Any]]) -> str:
    trailing_results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        trailing_results.insert(0, message_text(message))
    if trailing_results:
        text = "tool said: " + " | ".join(trailing_results)
    else:
        users = [m for m in messages if m.get("role") == "user"]
        text = "echo: " + (message_text(users[-1]) if users else "")
    return _formatted(text, body.get("response_format"))


def _formatted(text: str, response_format: object) -> str:
    if not isinstance(response_format, Mapping):
        return text
    kind = response_format.get("type")
    if kind == "json_object":
        return orjson.dumps({"answer": text}).decode()
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return orjson.dumps(sample_for_schema(schema or {"type": "object"})).decode()
    return text


def _limit(text: str, body: Mapping[str, Any]) -> tuple[str, str]:
    stops = body.get("stop")
    for stop in [stops] if isinstance(stops, str) else stops or []:
        if isinstance(stop, str) and stop and stop in text:
            text = text[: text.index(stop)]
    limit = body.get("max_completion_tokens")
    if limit is None:
        limit = body.get("max_tokens")
    words = split_words(text)
    if isinstance(limit, int) and 0 <= limit < len(words):
        return "".join(words[:limit]), "length"
    return text, "stop"


def _usage(messages: list[Mapping[str, Any]], choices: list[Choice]) -> JSONObject:
    prompt = sum(count_tokens(message_text(m)) + _call_tokens(m) for m in messages)
    completion = 0
    for choice in choices:
        completion += count_tokens(choice.content or choice.refusal or "")
        completion += sum(count_tokens(f"{c.name} {c.arguments}") for c in choice.tool_calls)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _call_tokens(message: Mapping[str, Any]) -> int:
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return 0
    total = 0
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            total += count_tokens(f"{function.get('name', '')} {function.get('arguments', '')}")
    return total
