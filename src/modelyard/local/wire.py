"""Reading the OpenAI-compatible requests the local worker serves.

A body is decoded by the gateway's own decoder (``protocols.openai.decode``) into a core
request; what is left here is local: folding roles and content into what a chat template
takes, the llama.cpp sampling extensions a client may send (``repeat_penalty``, ``top_k``,
``min_p``), and noting what a request relies on that no local model offers, so that the engine
refuses it by name. All of it happens before a request takes a place in a model's queue, so a
malformed body costs no inference time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import orjson

from modelyard.core.chat import ChatRequest, ImagePart, Message, ResponseFormat, TextPart
from modelyard.core.errors import InvalidRequest
from modelyard.local import tools
from modelyard.local.tools import ToolOffer
from modelyard.protocols.openai.decode import decode_chat, decode_embeddings
from modelyard.protocols.validate import bad, get_int, get_list, get_number

_T = TypeVar("_T")

MAX_CHOICES = 8
"""Choices are generated one after another, so ``n`` multiplies the time a request holds a model."""

# Roles the chat template understands: "developer" is OpenAI's newer name for "system".
_TEMPLATE_ROLES: Final[Mapping[str, str]] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
_PLAIN_TEXT = ResponseFormat("text")


@dataclass(frozen=True)
class Need:
    """A capability the request relies on, and the field that asks for it."""

    capability: str
    param: str


@dataclass(frozen=True)
class ChatMessage:
    """A message as the chat template takes it: a folded role and its text."""

    role: str
    content: str


@dataclass(frozen=True)
class Sampling:
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    # llama.cpp extensions a client may send. 1.1 is what llama-cpp-python's own OpenAI-compatible
    # server defaults to: small models fall into loops without it (SmolLM2, greedy, answers the
    # capital of France with a list of French words at 1.0, and with "Paris" at 1.1).
    repeat_penalty: float = 1.1
    top_k: int = 40
    min_p: float = 0.05


@dataclass(frozen=True)
class ChatParams:
    model: str
    messages: tuple[ChatMessage, ...]
    sampling: Sampling
    n: int = 1
    response_format: ResponseFormat = _PLAIN_TEXT
    stream: bool = False
    include_usage: bool = False
    needs: tuple[Need, ...] = ()
    tools: ToolOffer | None = None


@dataclass(frozen=True)
class EmbeddingParams:
    model: str
    inputs: tuple[str | tuple[int, ...], ...]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


def decode_body(raw: bytes) -> dict[str, Any]:
    """Parse a request body that must be one JSON object."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def parse_chat(body: dict[str, Any]) -> ChatParams:
    """Decode and validate a Chat Completions request body."""
    request = decode_chat(body)
    if body.get("stream_options") is not None and not request.stream:
        raise bad("stream_options", "only allowed when stream is true")
    n = 1 if request.n is None else request.n
    if n > MAX_CHOICES:
        raise bad("n", f"must be at most {MAX_CHOICES}, got {n}")
    tool_offer = tools.offer(request.tools, request.tool_choice)
    if tool_offer is not None and (request.response_format or _PLAIN_TEXT).kind != "text":
        raise bad("response_format", "cannot be combined with tools on a local model")
    messages = tuple(_template_message(m) for m in request.messages)
    return ChatParams(
        model=request.model,
        messages=messages if tool_offer is None else _with_tools(messages, tool_offer),
        sampling=_sampling(request),
        n=n,
        response_format=request.response_format or _PLAIN_TEXT,
        stream=request.stream,
        include_usage=request.include_usage,
        needs=_needs(request),
        tools=tool_offer,
    )


def _template_message(message: Message) -> ChatMessage:
    if message.tool_calls:
        return ChatMessage("assistant", tools.call_text(message))
    # Text parts are joined line by line: the template sees one text per message.
    return ChatMessage(
        _TEMPLATE_ROLES[message.role],
        "\n".join(p.text for p in message.content if isinstance(p, TextPart)),
    )


def _with_tools(messages: tuple[ChatMessage, ...], offer: ToolOffer) -> tuple[ChatMessage, ...]:
    """The messages with the tools described in the system turn (added when there is none)."""
    text = tools.system_text(offer)
    if messages and messages[0].role == "system":
        first = ChatMessage("system", f"{messages[0].content}\n\n{text}")
        return (first, *messages[1:])
    return (ChatMessage("system", text), *messages)


def _needs(request: ChatRequest) -> tuple[Need, ...]:
    """What the request asks for beyond text in, text out, each with the field that asks."""
    needs: list[Need] = []
    extra = request.extra
    if get_list(extra, "functions", "functions"):  # the legacy form of tools
        needs.append(Need("tools", "functions"))
    if extra.get("logprobs") is True:
        needs.append(Need("logprobs", "logprobs"))
    if extra.get("logit_bias"):
        needs.append(Need("logit_bias", "logit_bias"))
    for i, message in enumerate(request.messages):
        needs.extend(
            Need("image input", f"messages[{i}].content[{j}]")
            for j, part in enumerate(message.content)
            if isinstance(part, ImagePart)
        )
    return tuple(needs)


def _sampling(request: ChatRequest) -> Sampling:
    defaults = Sampling()
    extra = request.extra
    return Sampling(
        max_tokens=request.max_tokens,
        temperature=_or(request.temperature, defaults.temperature),
        top_p=_or(request.top_p, defaults.top_p),
        stop=tuple(s for s in request.stop if s),
        # llama.cpp seeds are unsigned 32-bit; fold any JSON integer into that range.
        seed=None if request.seed is None else request.seed % 2**32,
        frequency_penalty=_or(_number(extra, "frequency_penalty", -2.0, 2.0), 0.0),
        presence_penalty=_or(_number(extra, "presence_penalty", -2.0, 2.0), 0.0),
        repeat_penalty=_or(_number(extra, "repeat_penalty", 0.0, 10.0), defaults.repeat_penalty),
        top_k=_or(get_int(extra, "top_k", "top_k", minimum=0), defaults.top_k),
        min_p=_or(_number(extra, "min_p", 0.0, 1.0), defaults.min_p),
    )


def _number(extra: dict[str, Any], key: str, low: float, high: float) -> float | None:
    return get_number(extra, key, key, minimum=low, maximum=high)


def _or(value: _T | None, default: _T) -> _T:
    return default if value is None else value


def parse_embeddings(body: dict[str, Any]) -> EmbeddingParams:
    """Decode and validate an Embeddings request body."""
    request = decode_embeddings(body)
    items: list[str | list[int]] = list(request.inputs)
    inputs: list[str | tuple[int, ...]] = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            if not item:  # a model embeds something
                raise bad(f"input[{index}]", "must not be empty")
            inputs.append(item)
        elif item and all(_is_token(token) for token in item):
            inputs.append(tuple(item))
        else:
            raise bad(f"input[{index}]", "must be a non-empty array of token ids")
    encoding: Literal["float", "base64"] = (
        "base64" if body.get("encoding_format") == "base64" else "float"
    )
    return EmbeddingParams(request.model, tuple(inputs), encoding, request.dimensions)


def _is_token(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
