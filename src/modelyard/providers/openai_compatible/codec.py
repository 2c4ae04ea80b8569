"""Build OpenAI Chat Completions requests and parse responses and chunks into core (errors:
``errors``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

from modelyard.core.chat import (
    ChatRequest,
    ChatResult,
    Choice,
    DocumentPart,
    FinishReason,
    ImagePart,
    Message,
    NamedToolChoice,
    Native,
    TextPart,
    ToolCall,
    Usage,
)
from modelyard.core.errors import InvalidRequest, UpstreamError
from modelyard.core.events import (
    Finished,
    NativeDelta,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from modelyard.providers.base import encode_body, token_count
from modelyard.providers.documents import PDF, document_text, inline_pdf
from modelyard.providers.extras import GEMINI_ONLY, ExtrasPolicy, native_tool, passthrough_extras
from modelyard.providers.messages_fields import ORIGIN as MESSAGES_ORIGIN
from modelyard.providers.messages_fields import foreign_extras
from modelyard.providers.openai_compatible.presets import Preset

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "eos": "stop",
}
# The dialect of the answers parsed here, for the fields the core does not model
# (``core.chat.Native``): ``protocols.openai`` names its clients' requests the same.
ORIGIN = "openai"
# What the core models (or rewrites) of an answer, its choices, their messages and deltas:
# everything else an upstream sends is carried to a client of this dialect as it came.
# A usage is carried whole when it holds more than the counts (its token details): the encoder
# writes the core's counts over it.
_TOP_MODELLED = frozenset(
    ("id", "object", "created", "model", "choices", "system_fingerprint", "usage")
)
_CHOICE_MODELLED = frozenset(("index", "message", "delta", "finish_reason"))
_MESSAGE_MODELLED = frozenset(
    ("role", "content", "tool_calls", "reasoning_content", "reasoning", "refusal")
)
# Keys of a plain choice (``logprobs`` mostly ``null``) and of a plain message (its
# ``refusal`` ``null``): one that has no others holds nothing more than text to read.
_PLAIN_CHOICE = frozenset(("index", "message", "logprobs", "finish_reason"))
_PLAIN_MESSAGE = frozenset(("role", "content", "refusal"))
# A chunk's choice with more keys than its plain ones (index, delta, logprobs, finish_reason)
# carries a vendor's own field.
_PLAIN_CHUNK_CHOICE_KEYS = 4
# A usage with nothing more than these needs no ``Native``.
_USAGE_MODELLED = frozenset(("prompt_tokens", "completion_tokens", "total_tokens"))


# The rule (see ``providers.extras``): extra fields from this dialect's clients are sent as they
# are; another dialect's mean nothing here (and OpenAI rejects unknown fields), so from those
# clients only the operator's target params are sent.
EXTRAS = ExtrasPolicy("Chat Completions", origins=("", "openai"), foreign_refused=GEMINI_ONLY)


def build_body(request: ChatRequest, model: str, preset: Preset, stream: bool) -> bytes:
    if request.extra_origin == MESSAGES_ORIGIN:
        foreign_extras(request, preset.type)  # refuses what only Anthropic runs; sends nothing
    body = passthrough_extras(request, EXTRAS, preset.type)
    body["model"] = model
    body["messages"] = [_message(m, preset, i) for i, m in enumerate(request.messages)]
    _set_optional(body, request, preset)
    if stream:
        body["stream"] = True
        if preset.stream_usage_option:
            body["stream_options"] = {"include_usage": True}
    return encode_body(body)


def _set_optional(body: dict[str, Any], r: ChatRequest, preset: Preset) -> None:
    if r.max_tokens is not None:
        body[preset.max_tokens_field] = r.max_tokens
    for key, value in (
        ("temperature", r.temperature),
        ("top_p", r.top_p),
        (preset.seed_field, r.seed),
        ("n", r.n),
        ("parallel_tool_calls", r.parallel_tool_calls),
        ("user", r.user),
        ("metadata", r.metadata),
    ):
        if value is not None and key not in preset.omit_fields:
            body[key] = value
    if r.stop:
        body["stop"] = list(r.stop)
    if r.tools:
        body["tools"] = [_tool_json(r, i, preset) for i in range(len(r.tools))]
    if r.tool_choice is not None:
        body["tool_choice"] = (
            {"type": "function", "function": {"name": r.tool_choice.name}}
            if isinstance(r.tool_choice, NamedToolChoice)
            else r.tool_choice
        )
    if r.response_format is not None:
        fmt = r.response_format
        out: dict[str, Any] = {"type": fmt.kind}
        if fmt.kind == "json_schema":
            spec: dict[str, Any] = {"name": fmt.name or "response"}
            if fmt.schema is not None:
                spec["schema"] = fmt.schema
            if fmt.strict is not None:
                spec["strict"] = fmt.strict
            out["json_schema"] = spec
        body["response_format"] = out


def _tool_json(r: ChatRequest, i: int, preset: Preset) -> dict[str, Any]:
    t = r.tools[i]
    if t.native is not None:  # e.g. a ``custom`` (free-form) tool from an OpenAI client
        return native_tool(r, i, EXTRAS.origins or (), preset.type, EXTRAS.api)
    return _tool(t.name, t.description, t.parameters, t.strict)


def _tool(
    name: str, description: str | None, parameters: Mapping[str, Any] | None, strict: bool | None
) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": name}
    if description is not None:
        fn["description"] = description
    if parameters is not None:
        fn["parameters"] = parameters
    if strict is not None:
        fn["strict"] = strict
    return {"type": "function", "function": fn}


def content_json(message: Message, index: int = 0) -> str | list[dict[str, Any]] | None:
    """Content as the Chat Completions API takes it: a string when it is all text, else parts.

    The wire we call owns its shapes: ``protocols.openai`` encodes the same shape for the wire we
    serve, and the two may part (a vendor that takes fewer part types) without touching each
    other.
    """
    content = message.content
    if not content:
        return None
    if len(content) == 1 and type(content[0]) is TextPart:  # most messages: one text
        return content[0].text
    if all(isinstance(p, TextPart) for p in content):
        # Separate system blocks (e.g. an Anthropic client's) read as paragraphs, not run on.
        system = message.role in ("system", "developer")
        return message.block_text() if system else message.text()
    parts: list[dict[str, Any]] = []
    for j, p in enumerate(message.content):
        if isinstance(p, ImagePart):
            if p.url.startswith("data:"):
                _check_data_url(p.url, f"messages[{index}].content[{j}].image_url.url")
            image: dict[str, Any] = {"url": p.url}
            if p.detail is not None:
                image["detail"] = p.detail
            parts.append({"type": "image_url", "image_url": image})
        elif isinstance(p, DocumentPart):
            parts.append(_document(p, f"messages[{index}].content[{j}]"))
        else:
            parts.append({"type": "text", "text": p.text})
    return parts


def _document(p: DocumentPart, param: str) -> dict[str, Any]:
    """A text document as text; an inline PDF as a ``file`` part with its data."""
    if p.text is not None:
        return {"type": "text", "text": document_text(p)}
    data = inline_pdf(p, param, "this upstream")
    name = p.title or "document.pdf"
    return {"type": "file", "file": {"filename": name, "file_data": f"data:{PDF};base64,{data}"}}


def _check_data_url(url: str, param: str) -> None:
    """A ``data:`` URL image must be base64 that decodes: the upstream would refuse it anyway,
    and a 400 naming the part beats its text (issue 17 #11). The other adapters check theirs
    as they convert them."""
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64") or "/" not in header:
        raise InvalidRequest(
            f"{param}: an inline image must be a data:<media type>;base64,<data> URL",
            param=param,
        )
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"{param}: the image data is not valid base64", param=param) from exc


def _message(m: Message, preset: Preset, index: int) -> dict[str, Any]:
    role = "system" if m.role == "developer" and not preset.developer_role else m.role
    if m.refusal is not None and not preset.refusal_field:
        m = m.refusal_as_text()
    out: dict[str, Any] = {"role": role, "content": content_json(m, index)}
    if m.refusal is not None:
        out["refusal"] = m.refusal
    if m.name is not None:
        out["name"] = m.name
    ids = short_tool_id if preset.short_tool_ids else _same
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": ids(c.id), "type": "custom", "custom": {"name": c.name, "input": c.arguments}}
            if c.custom
            else {
                "id": ids(c.id),
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = ids(m.tool_call_id)
    return out


def _same(tool_id: str) -> str:
    return tool_id


def short_tool_id(tool_id: str) -> str:
    """A stable 9-character alphanumeric id for ``tool_id`` (ids already of that form kept)."""
    if len(tool_id) == 9 and tool_id.isalnum() and tool_id.isascii():
        return tool_id
    digest = int.from_bytes(hashlib.sha256(tool_id.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        digest, rem = divmod(digest, 62)
        chars.append(_BASE62[rem])
    return "".join(chars)


def parse_usage(raw: Any, preset: Preset | None = None) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt_tokens_details") or {}
    completion = raw.get("completion_tokens_details") or {}
    # DeepSeek reports cache hits in its own field; prompt_tokens already includes them.
    cached = token_count(prompt.get("cached_tokens") or raw.get("prompt_cache_hit_tokens"))
    reasoning = token_count(completion.get("reasoning_tokens"))
    output = token_count(raw.get("completion_tokens"))
    if preset is not None and preset.reasoning_outside_completion:
        output += reasoning
    return Usage(
        input_tokens=token_count(raw.get("prompt_tokens")),
        output_tokens=output,
        cached_input_tokens=cached,
        reasoning_tokens=reasoning,
    )


def parse_response(data: Any, label: str, preset: Preset | None = None) -> ChatResult:
    try:
        choices = [_choice(c) for c in data["choices"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise UpstreamError(f"{label}: the upstream sent a malformed completion") from exc
    raw_usage = data.get("usage")
    # A set difference, a subset test: no Python loop over the keys.
    unmodelled = data.keys() - _TOP_MODELLED or (
        raw_usage and not _USAGE_MODELLED.issuperset(raw_usage)
    )
    return ChatResult(
        choices=choices,
        usage=parse_usage(raw_usage, preset),
        upstream_model=data.get("model"),
        upstream_id=data.get("id"),
        system_fingerprint=data.get("system_fingerprint"),
        # The answer as it came, when it holds more than the core models: copying out those
        # fields would cost every answer; the encoder writes its own over the rest.
        native=Native(ORIGIN, data) if unmodelled else None,
    )


def _choice(raw: dict[str, Any]) -> Choice:
    msg = raw["message"]
    content = msg.get("content")
    text = content if isinstance(content, str) else None
    if (
        msg.get("refusal") is None
        and raw.get("logprobs") is None
        and _PLAIN_MESSAGE.issuperset(msg)
        and _PLAIN_CHOICE.issuperset(raw)
    ):  # most answers: text and nothing else, read with no more look-ups than that needs
        message = Message("assistant", (TextPart(text),) if text is not None else ())
        return Choice(
            int(raw.get("index", 0)), message, _FINISH.get(raw.get("finish_reason") or "")
        )
    raw_calls = msg.get("tool_calls")
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    refusal = msg.get("refusal")
    if not isinstance(refusal, str):
        refusal = None
    return Choice(
        index=int(raw.get("index", 0)),
        message=Message(
            role="assistant",
            content=(TextPart(text),) if text is not None else (),
            tool_calls=tuple(map(_call, raw_calls)) if raw_calls else (),
            reasoning=reasoning if isinstance(reasoning, str) else None,
            refusal=refusal,
        ),
        finish_reason=_FINISH.get(raw.get("finish_reason") or ""),
        native=_choice_native(raw, msg, text, refusal),
    )


def _choice_native(
    raw: dict[str, Any], msg: Any, text: str | None, refusal: str | None
) -> Native | None:
    """The choice's unmodelled fields, its message's under ``"message"`` (as on the wire)."""
    fields = {k: v for k, v in raw.items() if k not in _CHOICE_MODELLED and v is not None}
    if isinstance(msg, dict):
        own = {k: v for k, v in msg.items() if k not in _MESSAGE_MODELLED and v is not None}
        if own:
            fields["message"] = own
    return Native(ORIGIN, fields, text, refusal) if fields else None


def _call(c: dict[str, Any]) -> ToolCall:
    if c.get("type") == "custom":  # a free-form tool: its input is raw text
        custom = c["custom"]
        return ToolCall(c["id"], custom["name"], custom.get("input", ""), custom=True)
    return ToolCall(c["id"], c["function"]["name"], c["function"].get("arguments", ""))


def parse_chunk(data: Any, preset: Preset | None = None) -> list[StreamEvent]:
    """Events in one ``chat.completion.chunk``; raises ``KeyError``/``TypeError`` on nonsense.

    Unmodelled fields of a chunk's choice (``logprobs``...) or delta come first, as a
    ``NativeDelta``, so that the encoder of the same dialect writes them with what follows."""
    events: list[StreamEvent] = []
    for choice in data.get("choices") or ():
        index = int(choice.get("index", 0))
        delta = choice.get("delta") or {}
        text = delta.get("content")
        if text and len(delta) == 1 and choice.get("logprobs") is None:
            # Most chunks: a piece of text, nothing else. (A vendor's own field beside it on
            # the choice is not looked for: a check per token for something so rare.)
            events.append(TextDelta(text, index))
        elif delta or choice.get("logprobs") is not None or len(choice) > _PLAIN_CHUNK_CHOICE_KEYS:
            _delta_events(events, choice, delta, text, index)
        finish = choice.get("finish_reason")
        if finish:
            events.append(Finished(_FINISH.get(finish, "stop"), index))
    raw = data.get("usage")  # only in the last chunk, usually; ``null`` in the others
    if not raw and "x_groq" in data:  # Groq has sent the final usage there instead
        raw = (data["x_groq"] or {}).get("usage")
    if raw is not None:
        usage = parse_usage(raw, preset)
        if usage is not None:
            unmodelled = isinstance(raw, dict) and not _USAGE_MODELLED.issuperset(raw)
            events.append(UsageReport(usage, Native(ORIGIN, raw) if unmodelled else None))
    return events


def _delta_events(
    events: list[StreamEvent], choice: Any, delta: Any, text: Any, index: int
) -> None:
    """The events of a delta other than a bare piece of text. Its unmodelled fields go just
    before its text, which they describe (its tokens' log probabilities), else first."""
    own = None
    if not _MESSAGE_MODELLED.issuperset(delta):
        own = {k: v for k, v in delta.items() if k not in _MESSAGE_MODELLED and v is not None}
    refusal = delta.get("refusal")
    if not (refusal and isinstance(refusal, str)):
        refusal = None
    native = None
    if own or choice.get("logprobs") is not None or len(choice) > _PLAIN_CHUNK_CHOICE_KEYS:
        # Its log probabilities describe the delta's text, or its refusal's tokens.
        native = _native_delta(
            choice, own, text if isinstance(text, str) and text else None, refusal
        )
    if native is not None and not text:
        events.append(NativeDelta(native, index))
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if reasoning:
        events.append(ReasoningDelta(reasoning, index))
    if refusal is not None:
        events.append(RefusalDelta(refusal, index))
    if text:
        if native is not None:
            events.append(NativeDelta(native, index))
        events.append(TextDelta(text, index))
    if "tool_calls" in delta:
        events += _tool_call_deltas(delta["tool_calls"], index)


def _native_delta(
    choice: Any, delta: dict[str, Any] | None, text: str | None, refusal: str | None
) -> Native | None:
    """The chunk choice's unmodelled fields (its delta's, ``delta``, under ``"delta"``)."""
    fields = {k: v for k, v in choice.items() if k not in _CHOICE_MODELLED and v is not None}
    if delta:
        fields["delta"] = delta
    return Native(ORIGIN, fields, text, refusal) if fields else None


def _tool_call_deltas(calls: Any, index: int) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    for call in calls or ():
        custom = call.get("custom")
        fn = custom if custom is not None else call.get("function") or {}
        out.append(
            ToolCallDelta(
                call_index=int(call.get("index", 0)),
                arguments=fn.get("input" if custom is not None else "arguments") or "",
                id=call.get("id"),
                name=fn.get("name"),
                index=index,
                custom=custom is not None,
            )
        )
    return out
