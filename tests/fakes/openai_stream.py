"""Render a ``ChatAnswer`` as the ``chat.completion.chunk`` SSE frames OpenAI streams.

The sequence per choice mirrors the real endpoint:

* a first delta with ``role: "assistant"`` (``content: ""`` for text answers; ``content: null``
  plus the first tool call's header for tool answers), and ``refusal: null``;
* text as several word-sized ``content`` deltas;
* each tool call as a header delta (``index``, ``id``, ``type``, ``function.name``, empty
  ``function.arguments``) followed by deltas carrying only ``index`` and argument fragments;
* a refusal (``Choice.refusal``) as a first delta with ``content: null`` and ``refusal: ""``,
  then word-sized ``refusal`` deltas;
* for a search answer (``ChatAnswer.cited``), a delta carrying only ``annotations``, after the
  text (the search models send their citations so, outside the documented delta schema);
* a delta ``{}`` with the ``finish_reason``.

With ``ChatAnswer.logprobs`` set, each text or refusal delta's choice carries the ``logprobs``
of its piece (the first delta's: an empty ``content`` list); the others carry ``null``.

With ``n > 1`` the choices' deltas are interleaved, as the real API does. With
``stream_options.include_usage`` every chunk carries ``"usage": null`` and one more chunk with
``choices: []`` carries the usage. Chunks carry an ``obfuscation`` padding string unless
``stream_options.include_obfuscation`` is false. The stream ends with ``data: [DONE]``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from .openai_chat import ChatAnswer, Choice, ToolCall, choice_logprobs, citation
from .openai_wire import JSONObject, split_words

DONE_FRAME = b"data: [DONE]\n\n"
# Real argument fragments break between JSON punctuation and identifiers (`{"`, `city`, `":"`).
_FRAGMENT = re.compile(r"[A-Za-z0-9_]+|[^A-Za-z0-9_]+")


def sse_frame(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def stream_frames(answer: ChatAnswer, stream_options: object) -> list[bytes]:
    """All frames of the stream, ``[DONE]`` included, in the order they are sent."""
    options: Mapping[str, Any] = stream_options if isinstance(stream_options, Mapping) else {}
    include_usage = bool(options.get("include_usage"))
    obfuscate = options.get("include_obfuscation") is not False
    frames: list[bytes] = []
    per_choice = [_deltas(answer, c) for c in answer.choices]
    for serial, choice_delta in enumerate(_interleave(per_choice)):
        chunk = _chunk(answer, [choice_delta], obfuscation=_padding(serial) if obfuscate else None)
        if include_usage:
            chunk["usage"] = None
        frames.append(sse_frame(chunk))
    if include_usage:
        last = _chunk(answer, [], obfuscation=_padding(len(frames)) if obfuscate else None)
        last["usage"] = answer.usage
        frames.append(sse_frame(last))
    frames.append(DONE_FRAME)
    return frames


def error_frame(message: str, error_type: str = "server_error") -> bytes:
    """An in-stream error event, the way OpenAI reports a failure after the stream started."""
    return sse_frame(
        {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    )


def _chunk(answer: ChatAnswer, choices: list[JSONObject], *, obfuscation: str | None) -> JSONObject:
    chunk: JSONObject = {
        "id": answer.id,
        "object": "chat.completion.chunk",
        "created": answer.created,
        "model": answer.model,
        "service_tier": "default",
        "system_fingerprint": answer.system_fingerprint,
        "choices": choices,
    }
    if obfuscation is not None:
        chunk["obfuscation"] = obfuscation
    return chunk


def _deltas(answer: ChatAnswer, choice: Choice) -> list[JSONObject]:
    top = answer.logprobs
    if choice.tool_calls:
        deltas = _tool_call_deltas(choice.tool_calls)
    elif choice.refusal is not None:
        first: JSONObject = {"role": "assistant", "content": None, "refusal": ""}
        deltas = [first] + [{"refusal": piece} for piece in split_words(choice.refusal)]
    else:
        first = {"role": "assistant", "content": "", "refusal": None}
        deltas = [first] + [{"content": piece} for piece in split_words(choice.content or "")]
    wrapped: list[JSONObject] = [
        {
            "index": choice.index,
            "delta": delta,
            "logprobs": _piece_logprobs(choice, delta, top),
            "finish_reason": None,
        }
        for delta in deltas
    ]
    if answer.cited and choice.content is not None:
        cited = {"annotations": [citation(choice.content)]}
        wrapped.append(
            {"index": choice.index, "delta": cited, "logprobs": None, "finish_reason": None}
        )
    wrapped.append(
        {
            "index": choice.index,
            "delta": {},
            "logprobs": None,
            "finish_reason": choice.finish_reason,
        }
    )
    return wrapped


def _piece_logprobs(choice: Choice, delta: JSONObject, top: int | None) -> JSONObject | None:
    if top is None or choice.tool_calls:
        return None
    if "role" in delta:  # the first delta, before any token
        return {"content": [], "refusal": None}
    piece = delta.get("refusal") or delta.get("content")
    return choice_logprobs(choice, top, piece if isinstance(piece, str) else None)


def _tool_call_deltas(calls: Sequence[ToolCall]) -> list[JSONObject]:
    deltas: list[JSONObject] = []
    for index, call in enumerate(calls):
        header = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        if index == 0:
            deltas.append(
                {"role": "assistant", "content": None, "tool_calls": [header], "refusal": None}
            )
        else:
            deltas.append({"tool_calls": [header]})
        for fragment in _FRAGMENT.findall(call.arguments):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
    return deltas


def _interleave(per_choice: list[list[JSONObject]]) -> list[JSONObject]:
    merged: list[JSONObject] = []
    for step in range(max((len(d) for d in per_choice), default=0)):
        merged.extend(deltas[step] for deltas in per_choice if step < len(deltas))
    return merged


def _padding(serial: int) -> str:
    # Real padding is random; a hash of the chunk's position keeps streams reproducible.
    digest = hashlib.sha256(str(serial).encode()).hexdigest()
    return digest[: 2 + serial % 11]
