"""The legacy Completions API (``POST /v1/completions``) on any deployment.

A completion request becomes a chat request of one user turn holding the ``prompt``: every
deployment is a chat model, so the prompt is read as an instruction to answer rather than as
text to continue (document this to users of base-model prompts). Field by field:

* ``prompt``: a string, or a list of exactly one string; several prompts in one request, or
  token arrays, are a 400 (send one prompt per request, as text).
* ``max_tokens`` (this API's default is 16, applied when it is left out), ``temperature``,
  ``top_p``, ``n``, ``stop`` (a string or up to 4), ``seed``, ``user``, ``stream`` and
  ``stream_options.include_usage`` as on chat.
* ``frequency_penalty``, ``presence_penalty``, ``logit_bias`` and any other field travel in
  ``extra`` as on chat (OpenAI-compatible upstreams receive them; others refuse what would change
  the answer).
* ``echo``, ``suffix``, ``logprobs`` and ``best_of`` above 1 cannot be honoured by a chat model:
  a 400 naming the field unless their value asks for nothing.

The answer is a ``text_completion``: ``choices[].text``, ``index``, ``logprobs: null``,
``finish_reason``; streamed, one ``text_completion`` chunk per piece of text, a last chunk per
choice with its ``finish_reason``, the usage chunk when asked for, then ``data: [DONE]``. This
API has no refusal: a model's refusal (``Message.refusal``, ``RefusalDelta``) is the choice's
text, after any text, whole or streamed, with the upstream's finish reason.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelyard.core.chat import ChatRequest, ChatResult, Message, TextPart, Usage
from modelyard.core.events import Finished, RefusalDelta, StreamEvent, TextDelta, UsageReport
from modelyard.protocols.openai.encode import DONE_FRAME, usage_json
from modelyard.protocols.validate import (
    bad,
    get_bool,
    get_dict,
    get_int,
    get_number,
    get_str,
    require_dict,
)

DEFAULT_MAX_TOKENS = 16
_MAX_STOPS = 4
_KNOWN = frozenset(
    {
        "model", "prompt", "max_tokens", "temperature", "top_p", "n", "stop", "seed", "user",
        "stream", "stream_options", "echo", "suffix", "logprobs", "best_of",
    }
)  # fmt: skip
# Fields a chat model cannot honour, and the values of each that ask for nothing.
_REFUSED: tuple[tuple[str, tuple[object, ...]], ...] = (
    ("echo", (None, False)),
    ("suffix", (None, "")),
    ("logprobs", (None, 0)),
    ("best_of", (None, 1)),
)


def decode_completion(body: Any) -> ChatRequest:
    body = require_dict(body, "body")
    for name, harmless in _REFUSED:
        if body.get(name) not in harmless:
            raise bad(name, "cannot be honoured: every deployment answers as a chat model")
    stream_options = get_dict(body, "stream_options", "stream_options") or {}
    max_tokens = get_int(body, "max_tokens", "max_tokens", minimum=1)
    return ChatRequest(
        model=get_str(body, "model", "model", required=True) or "",
        messages=[Message("user", (TextPart(_prompt(body.get("prompt"))),))],
        stream=bool(get_bool(body, "stream", "stream")),
        include_usage=bool(
            get_bool(stream_options, "include_usage", "stream_options.include_usage")
        ),
        max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
        temperature=get_number(body, "temperature", "temperature", minimum=0, maximum=2),
        top_p=get_number(body, "top_p", "top_p", minimum=0, maximum=1),
        stop=_stop(body.get("stop")),
        seed=get_int(body, "seed", "seed"),
        n=get_int(body, "n", "n", minimum=1, maximum=128),
        user=get_str(body, "user", "user"),
        extra={k: v for k, v in body.items() if k not in _KNOWN and v is not None},
        extra_origin="openai",
    )


def _prompt(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], str):
        return raw[0]
    if isinstance(raw, list) and raw and all(isinstance(p, str) for p in raw):
        raise bad("prompt", f"holds {len(raw)} prompts; send one prompt per request")
    raise bad("prompt", "must be a string (or a list of one string); token arrays are not accepted")


def _stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and len(raw) <= _MAX_STOPS and all(isinstance(s, str) for s in raw):
        return tuple(raw)
    raise bad("stop", f"must be a string or a list of at most {_MAX_STOPS} strings")


def completion_json(result: ChatResult, completion_id: str, created: int, model: str) -> bytes:
    choices = [
        {
            "text": _text(c.message),
            "index": c.index,
            "logprobs": None,
            "finish_reason": _finish(c.finish_reason),
        }
        for c in result.choices
    ]
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage_json(result.usage or Usage()),
    }
    return orjson.dumps(body)


def _text(message: Message) -> str:
    """The choice's text: a refusal, which this API cannot mark, is what the model said."""
    text = message.text()
    return text if message.refusal is None else text + message.refusal


def _finish(reason: str | None) -> str | None:
    # This API knows stop, length and content_filter; a tool call cannot happen without tools.
    return "stop" if reason == "tool_calls" else reason


class CompletionChunkEncoder:
    """Core stream events as ``text_completion`` SSE chunks for one response."""

    __slots__ = ("_include_usage", "_prefix", "_usage")

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        head = orjson.dumps(
            {"id": completion_id, "object": "text_completion", "created": created, "model": model}
        )
        self._prefix = b"data: " + head[:-1] + b',"choices":'
        self._include_usage = include_usage
        self._usage: Usage | None = None

    def _frame(self, choices: list[dict[str, Any]], usage: Usage | None = None) -> bytes:
        tail = b"}\n\n"
        if usage is not None:
            tail = b',"usage":' + orjson.dumps(usage_json(usage)) + tail
        return self._prefix + orjson.dumps(choices) + tail

    def _choice(self, index: int, text: str, finish: str | None) -> bytes:
        choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish}
        return self._frame([choice])

    def start(self) -> bytes:
        return b""

    def encode(self, event: StreamEvent) -> bytes | None:
        if isinstance(event, TextDelta):
            return self._choice(event.index, event.text, None) if event.text else None
        if isinstance(event, Finished):
            return self._choice(event.index, "", _finish(event.reason))
        if isinstance(event, RefusalDelta):  # no refusal in this API: the model's words, as text
            return self._choice(event.index, event.text, None) if event.text else None
        if isinstance(event, UsageReport):
            self._usage = event.usage  # sent last, as on chat
        return None  # reasoning has no field in this API

    def close(self) -> bytes:
        if self._include_usage and self._usage is not None:
            return self._frame([], self._usage) + DONE_FRAME
        return DONE_FRAME
