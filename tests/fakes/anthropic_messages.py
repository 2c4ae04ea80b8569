"""The fake's "model": deterministic Messages API answers and the non-streamed body.

How an answer is chosen (first rule that applies):

* The last user turn holds ``tool_result`` blocks: ``"tool said: " + their contents`` (joined by
  ``" | "`` when several results answer one parallel call).
* ``tools`` present, ``tool_choice`` not ``none``: one ``tool_use`` per tool (only the named one
  for ``{"type": "tool"}``, only the first with ``disable_parallel_tool_use``), inputs sampled
  from the input schema (a string property ``city`` is ``"Paris"``, other strings ``"x"``,
  numbers 1, booleans true).
* The last user turn's text contains ``"please refuse"``: ``REFUSAL`` as the text, with
  ``stop_reason: "refusal"`` (how Claude's streaming classifier declines).
* Otherwise ``"echo: " + <text of the last user turn>``; with ``output_config.format`` a sample
  of its JSON schema instead.

With ``thinking`` enabled (or adaptive) a signed ``thinking`` block comes first; when the
conversation's first user turn says ``"think in secret"``, a ``redacted_thinking`` block
(``REDACTED_DATA``) instead, as the API sends thinking its safety systems flagged.

Web search: when ``tools`` hold a ``web_search_*`` server tool and the last user turn says
``"search the web"``, the answer is the server's search and a cited text, as the real API writes
them (before any other rule): a ``server_tool_use`` (``input.query`` the turn's text), its
``web_search_tool_result`` (one ``web_search_result``), a plain text block and a text block with
one ``web_search_result_location`` citation; ``usage.server_tool_use.web_search_requests`` is 1.

A turn that pauses: with a ``web_search_*`` tool, when the last user turn says ``"search the
web at length"`` and is the last message, the answer is the search's ``server_tool_use`` alone
with ``stop_reason: "pause_turn"`` (the server paused before running it); sent back as the last
(assistant) message, the turn goes on: the search's result and the cited text, ``end_turn``.

The last user turn's text contains ``"fill the context"``: its first two words of the echo, with
``stop_reason: "model_context_window_exceeded"`` (the context window, not ``max_tokens``, ended
it).

Then ``stop_sequences`` cut the text (``stop_reason: stop_sequence``) and ``max_tokens`` keeps that
many words (``max_tokens``). Tokens are whitespace-separated words.

Code execution: when ``tools`` hold a ``code_execution_*`` server tool, or the request names a
``container`` (its id, or an object with an ``id``), the answer carries a top-level
``container`` (``id``, ``expires_at``), as the real API's does (in a stream, the
``message_delta``'s ``delta.container``): the one the request named, else a new one, so that
a client that sends it back is seen reusing it.

Prompt caching: when the request carries a top-level ``cache_control`` or any tool, system or
message block carries one, the prompt up to the last such breakpoint (all of it for the
top-level form) is the cached prefix: the first request with a given prefix reports it as
``cache_creation_input_tokens``, later ones as ``cache_read_input_tokens``; ``input_tokens`` is
the rest, as the real API counts it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from .anthropic_wire import REDACTED_DATA, AnthropicIds, signature_for
from .openai_schema import sample_for_schema
from .openai_wire import count_tokens, split_words


@dataclass(frozen=True, slots=True)
class Block:
    # "text", "thinking", "tool_use", "redacted_thinking", "server_tool_use" (``id``, ``name``,
    # ``input``) or a server tool's result (``raw``, the whole block)
    type: str
    text: str = ""  # the text, or the thinking
    id: str = ""
    name: str = ""
    input: dict[str, Any] = field(default_factory=dict)
    citations: tuple[dict[str, Any], ...] = ()  # a text block's
    raw: dict[str, Any] | None = None

    def json(self) -> dict[str, Any]:
        if self.raw is not None:
            return dict(self.raw)
        if self.type == "redacted_thinking":
            return {"type": "redacted_thinking", "data": REDACTED_DATA}
        if self.type == "server_tool_use":
            return {
                "type": "server_tool_use",
                "id": self.id,
                "name": self.name,
                "input": self.input,
            }
        if self.citations:
            return {"type": "text", "text": self.text, "citations": list(self.citations)}
        if self.type == "thinking":
            return {
                "type": "thinking",
                "thinking": self.text,
                "signature": signature_for(self.text),
            }
        if self.type == "tool_use":
            return {"type": "tool_use", "id": self.id, "name": self.name, "input": self.input}
        return {"type": "text", "text": self.text}


REFUSAL = "I can't help with that."
_REFUSE_TRIGGER = "please refuse"
_SECRET_TRIGGER = "think in secret"
_SEARCH_TRIGGER = "search the web"
_PAUSE_TRIGGER = "search the web at length"
_CONTEXT_TRIGGER = "fill the context"
SEARCH_URL = "https://en.wikipedia.org/wiki/Paris"
SEARCH_TITLE = "Paris - Wikipedia"
SEARCH_FOUND = "Here is what I found. "
SEARCH_CITED = "Paris is the capital of France."
CONTAINER_EXPIRES = "2026-12-07T13:00:00Z"


@dataclass(frozen=True, slots=True)
class Answer:
    id: str
    model: str
    blocks: tuple[Block, ...]
    stop_reason: str
    stop_sequence: str | None
    usage: dict[str, Any]
    container: dict[str, Any] | None = None


def build_answer(body: Mapping[str, Any], ids: AnthropicIds, cache: set[str]) -> Answer:
    blocks: list[Block] = []
    thinking = body.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive"):
        subject = _last_user_text(body) or "the tool results"
        if _SECRET_TRIGGER in _first_user_text(body):
            blocks.append(Block("redacted_thinking"))
        else:
            blocks.append(Block("thinking", "Let me think about: " + subject))
    calls = _tool_uses(body, ids)
    stop_sequence = None
    if _searches(body):
        stop_reason = _search(body, ids, blocks)
    elif calls:
        blocks.extend(calls)
        stop_reason = "tool_use"
    elif _REFUSE_TRIGGER in _last_user_text(body):
        stop_reason = "refusal"
        blocks.append(Block("text", REFUSAL))
    elif _CONTEXT_TRIGGER in _last_user_text(body):
        stop_reason = "model_context_window_exceeded"
        blocks.append(Block("text", "".join(split_words(_reply_text(body))[:2])))
    else:
        text, stop_reason, stop_sequence = _limit(_reply_text(body), body)
        blocks.append(Block("text", text))
    return Answer(
        id=ids.message(),
        model=str(body["model"]),
        blocks=tuple(blocks),
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=usage(body, blocks, cache),
        container=_container(body),
    )


def _container(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The container the answer ran in: the one the request named, else a new one when a
    code execution tool is on offer, else none."""
    named = body.get("container")
    if isinstance(named, Mapping):
        named = named.get("id")
    if isinstance(named, str) and named:
        return {"id": named, "expires_at": CONTAINER_EXPIRES}
    tools = body.get("tools") or []
    if any(str(t.get("type", "")).startswith("code_execution_") for t in tools):
        seed = orjson.dumps(body.get("messages"))
        name = "container_" + hashlib.sha256(seed).hexdigest()[:24]
        return {"id": name, "expires_at": CONTAINER_EXPIRES}
    return None


def message_body(answer: Answer) -> dict[str, Any]:
    body = {
        "id": answer.id,
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": [block.json() for block in answer.blocks],
        "stop_reason": answer.stop_reason,
        "stop_sequence": answer.stop_sequence,
        "usage": answer.usage,
    }
    if answer.container is not None:
        body["container"] = answer.container
    return body


def prompt_tokens(body: Mapping[str, Any]) -> int:
    return sum(segment.tokens for segment in _segments(body))


def _last_user(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    for message in reversed(body["messages"]):
        if message["role"] == "user":
            return _blocks(message)
    return []


def _first_user_text(body: Mapping[str, Any]) -> str:
    for message in body["messages"]:
        if message["role"] == "user":
            return " ".join(b["text"] for b in _blocks(message) if b.get("type") == "text")
    return ""


def _searches(body: Mapping[str, Any]) -> bool:
    tools = body.get("tools") or []
    if not any(str(t.get("type", "")).startswith("web_search_") for t in tools):
        return False
    return _SEARCH_TRIGGER in _last_user_text(body)


def _search(body: Mapping[str, Any], ids: AnthropicIds, blocks: list[Block]) -> str:
    """The search's blocks (added to ``blocks``) and the stop reason: a long search pauses
    after its call, and the paused turn sent back goes on from there."""
    query = _last_user_text(body)
    last = body["messages"][-1]
    if _PAUSE_TRIGGER not in query:
        blocks.extend(_web_search(query, ids.server_tool_use()))
        return "end_turn"
    if last["role"] == "user":
        blocks.append(_web_search(query, ids.server_tool_use())[0])
        return "pause_turn"
    # The paused call, as the client sent it back.
    (call,) = [b for b in _blocks(last) if b.get("type") == "server_tool_use"]
    blocks.extend(_web_search(query, str(call["id"]))[1:])
    return "end_turn"


def _web_search(query: str, call_id: str) -> list[Block]:
    encrypted = hashlib.sha256(SEARCH_URL.encode()).hexdigest()
    result = {
        "type": "web_search_tool_result",
        "tool_use_id": call_id,
        "content": [
            {
                "type": "web_search_result",
                "url": SEARCH_URL,
                "title": SEARCH_TITLE,
                "encrypted_content": encrypted,
                "page_age": "April 30, 2025",
            }
        ],
    }
    citation = {
        "type": "web_search_result_location",
        "url": SEARCH_URL,
        "title": SEARCH_TITLE,
        "encrypted_index": encrypted[:32],
        "cited_text": "Paris is the capital and largest city of France.",
    }
    return [
        Block("server_tool_use", id=call_id, name="web_search", input={"query": query}),
        Block("web_search_tool_result", raw=result),
        Block("text", SEARCH_FOUND),
        Block("text", SEARCH_CITED, citations=(citation,)),
    ]


def _last_user_text(body: Mapping[str, Any]) -> str:
    return " ".join(b["text"] for b in _last_user(body) if b.get("type") == "text")


def _blocks(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = message["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _tool_uses(body: Mapping[str, Any], ids: AnthropicIds) -> list[Block]:
    # Server tools (typed, no input_schema) run on the vendor's side: the fake calls none.
    tools = [t for t in body.get("tools") or [] if t.get("type") in (None, "custom")]
    choice = body.get("tool_choice") or {"type": "auto"}
    last = body["messages"][-1]
    answered = any(b.get("type") == "tool_result" for b in _blocks(last))
    if not tools or choice.get("type") == "none" or last["role"] != "user" or answered:
        return []
    if choice.get("type") == "tool":
        tools = [t for t in tools if t["name"] == choice.get("name")]
    if choice.get("disable_parallel_tool_use"):
        tools = tools[:1]
    return [
        Block("tool_use", id=ids.tool_use(), name=t["name"], input=_sample(t["input_schema"]))
        for t in tools
    ]


def _sample(schema: object) -> dict[str, Any]:
    value = sample_for_schema(schema)
    return value if isinstance(value, dict) else {}


def _reply_text(body: Mapping[str, Any]) -> str:
    output = body.get("output_config")
    fmt = output.get("format") if isinstance(output, Mapping) else None
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        return orjson.dumps(_sample(fmt.get("schema"))).decode()
    results = [b for b in _last_user(body) if b.get("type") == "tool_result"]
    if results:
        return "tool said: " + " | ".join(_result_text(b.get("content")) for b in results)
    return "echo: " + _last_user_text(body)


def _result_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b["text"] for b in content if isinstance(b, Mapping) and "text" in b)
    return ""


def _limit(text: str, body: Mapping[str, Any]) -> tuple[str, str, str | None]:
    for stop in body.get("stop_sequences") or []:
        if stop and stop in text:
            return text[: text.index(stop)], "stop_sequence", stop
    words = split_words(text)
    if body["max_tokens"] < len(words):
        return "".join(words[: body["max_tokens"]]), "max_tokens", None
    return text, "end_turn", None


def usage(body: Mapping[str, Any], blocks: list[Block], cache: set[str]) -> dict[str, Any]:
    segments = _segments(body)
    total = sum(segment.tokens for segment in segments)
    cached, ttl = _cached_prefix(body, segments)
    prefix = sum(segment.tokens for segment in cached)
    key = hashlib.sha256(b"".join(segment.content for segment in cached)).hexdigest()
    hit = bool(cached) and key in cache
    if cached:
        cache.add(key)
    written = 0 if hit else prefix
    return {
        "input_tokens": total - prefix,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": prefix if hit else 0,
        "cache_creation": {
            "ephemeral_5m_input_tokens": written if ttl != "1h" else 0,
            "ephemeral_1h_input_tokens": written if ttl == "1h" else 0,
        },
        "output_tokens": sum(count_tokens(_block_text(b.json())) for b in blocks),
        "service_tier": "standard",
        **_server_tool_use(blocks),
    }


def _server_tool_use(blocks: list[Block]) -> dict[str, Any]:
    searches = sum(1 for b in blocks if b.type == "server_tool_use" and b.name == "web_search")
    return {"server_tool_use": {"web_search_requests": searches}} if searches else {}


@dataclass(frozen=True, slots=True)
class _Segment:
    tokens: int
    mark: object  # the piece's cache_control, if any
    content: bytes


def _segments(body: Mapping[str, Any]) -> list[_Segment]:
    """One segment per prompt piece, in the API's caching order: tools, system, messages."""
    pieces: list[_Segment] = []
    for tool in body.get("tools") or []:
        text = f"{tool.get('name', '')} {tool.get('description', '')}"
        pieces.append(_Segment(count_tokens(text), tool.get("cache_control"), orjson.dumps(tool)))
    system = body.get("system")
    for block in [{"text": system}] if isinstance(system, str) else system or []:
        text = str(block.get("text", ""))
        pieces.append(_Segment(count_tokens(text), block.get("cache_control"), text.encode()))
    for message in body["messages"]:
        for block in _blocks(message):
            tokens = count_tokens(_block_text(block))
            pieces.append(_Segment(tokens, block.get("cache_control"), orjson.dumps(block)))
    return pieces


def _block_text(block: Mapping[str, Any]) -> str:
    kind = block.get("type")
    if kind == "text":
        return str(block["text"])
    if kind == "tool_use":
        return f"{block['name']} {orjson.dumps(block['input']).decode()}"
    if kind == "tool_result":
        return _result_text(block.get("content"))
    if kind == "thinking":
        return str(block.get("thinking", ""))
    return ""


def _cached_prefix(
    body: Mapping[str, Any], segments: list[_Segment]
) -> tuple[list[_Segment], str | None]:
    top = body.get("cache_control")
    if isinstance(top, Mapping):
        return segments, top.get("ttl")
    marks = [i for i, segment in enumerate(segments) if isinstance(segment.mark, Mapping)]
    if not marks:
        return [], None
    last = segments[marks[-1]].mark
    ttl = last.get("ttl") if isinstance(last, Mapping) else None
    return segments[: marks[-1] + 1], ttl
