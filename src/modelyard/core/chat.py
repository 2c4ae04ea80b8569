"""The canonical chat request and result, decoded from any served dialect.

Field semantics follow the most common denominator of the vendors: token counts are inclusive
(``input_tokens`` includes cached and cache-write tokens; ``output_tokens`` includes reasoning
tokens), so a codec whose vendor reports them separately adds them up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Role = Literal["system", "developer", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
ToolChoiceMode = Literal["auto", "none", "required"]
ResponseFormatKind = Literal["text", "json_object", "json_schema"]


@dataclass(slots=True, frozen=True)
class CacheMark:
    """A prompt-cache breakpoint a client set after a part: the prefix up to and including it
    may be cached. ``ttl`` is the client's lifetime (``"5m"``, ``"1h"``) when it named one."""

    ttl: str | None = None


@dataclass(slots=True, frozen=True)
class TextPart:
    text: str
    cache: CacheMark | None = None


@dataclass(slots=True, frozen=True)
class ImagePart:
    """An image by URL; inline images arrive as ``data:`` URLs."""

    url: str
    detail: str | None = None
    cache: CacheMark | None = None


@dataclass(slots=True, frozen=True)
class DocumentPart:
    """A document the model reads: a PDF (base64 ``data``, or a ``url``) or plain ``text``.

    ``native`` keeps the block as the client's dialect wrote it (its ``context``,
    ``citations``...), for an upstream of that dialect (``ChatRequest.extra_origin``)."""

    media_type: str
    data: str | None = None
    url: str | None = None
    text: str | None = None
    title: str | None = None
    cache: CacheMark | None = None
    native: Mapping[str, Any] | None = None


ContentPart = TextPart | ImagePart | DocumentPart


@dataclass(slots=True, frozen=True)
class ToolCall:
    """A call the model asked for; ``arguments`` is the JSON text exactly as the model wrote it."""

    id: str
    name: str
    arguments: str
    # A call of a free-form (custom) tool: ``arguments`` is its raw input text, not JSON.
    custom: bool = False


@dataclass(slots=True)
class Message:
    role: Role
    content: tuple[ContentPart, ...] = ()
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    reasoning: str | None = None
    # An opaque token some vendors attach to their reasoning (a signed thinking block); it must
    # go back upstream unchanged with ``reasoning`` when the conversation continues with tools.
    reasoning_signature: str | None = None
    # A cache breakpoint on the message as one block (a tool result), not on one of its parts.
    cache: CacheMark | None = None
    # The model's statement that it declines to answer (OpenAI's structured-outputs
    # ``refusal``), instead of content: a client of any dialect can be told why it got none.
    refusal: str | None = None
    # The turn's blocks as the client's dialect wrote them, when it held some the core does
    # not model (encrypted thinking, a vendor's server-tool blocks, citations): only an
    # upstream of that dialect sends them, in place of what the core rebuilds, while the text
    # is still ``native.text`` (a stage that rewrote it makes them stale).
    native: Native | None = None

    def text(self) -> str:
        """The concatenated text parts (images ignored)."""
        content = self.content
        if len(content) == 1 and type(content[0]) is TextPart:  # most messages: one text
            return content[0].text
        return "".join(p.text for p in content if isinstance(p, TextPart))

    def block_text(self) -> str:
        """The text parts joined with a blank line: how separate system blocks read as one
        text for an upstream that takes a single string."""
        return BLOCK_SEPARATOR.join(p.text for p in self.content if isinstance(p, TextPart))

    def has_images(self) -> bool:
        return any(isinstance(p, ImagePart) for p in self.content)

    def refusal_as_text(self) -> Message:
        """This message with its refusal as a text part after its content: what an upstream
        whose dialect has no refusal reads of an assistant turn that declined (the model then
        knows what it said, and the turn is not left empty)."""
        if self.refusal is None:
            return self
        return replace(self, content=(*self.content, TextPart(self.refusal)), refusal=None)

    def has_documents(self) -> bool:
        return any(isinstance(p, DocumentPart) for p in self.content)


@dataclass(slots=True, frozen=True)
class ToolSpec:
    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None
    strict: bool | None = None
    cache: CacheMark | None = None
    # A tool the vendor runs itself (a server tool: web search, code execution...), as the
    # client's dialect (``ChatRequest.extra_origin``) wrote it; only an upstream of that
    # dialect can run it, every other refuses it by name.
    native: Mapping[str, Any] | None = None


@dataclass(slots=True, frozen=True)
class NamedToolChoice:
    name: str


ToolChoice = ToolChoiceMode | NamedToolChoice


@dataclass(slots=True, frozen=True)
class ResponseFormat:
    kind: ResponseFormatKind
    schema: Mapping[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(slots=True)
class ChatRequest:
    """One chat request, whatever dialect it came through.

    ``extra`` keeps fields this type does not model, so that an upstream speaking the same API
    receives them unchanged instead of having them silently dropped; ``extra_origin`` says
    which API that is.
    """

    model: str
    messages: list[Message]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    metadata: Mapping[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The served dialect ``extra`` came from: its fields mean something only to upstreams that
    # speak that dialect. Empty when unknown.
    extra_origin: str = ""
    # Unmodelled fields from the operator's deployment target ``params``: sent to any upstream
    # that takes extra fields, whatever the client's dialect (they are also merged into extra).
    overrides: dict[str, Any] = field(default_factory=dict)
    # Opt-in feature flags the client named for its dialect (a beta header of the served API),
    # for upstreams of that dialect.
    betas: tuple[str, ...] = ()

    def has_images(self) -> bool:
        return any(m.has_images() for m in self.messages)

    def has_pdf_documents(self) -> bool:
        """Whether a message holds a PDF (text documents are read as text anywhere)."""
        # Asked of every request (a target's capabilities): plain loops, no generator per call.
        for message in self.messages:
            for part in message.content:
                if isinstance(part, DocumentPart) and part.text is None:
                    return True
        return False


@dataclass(slots=True)
class Usage:
    """Token counts of one call, inclusive (see the module's docstring).

    ``cache_write_1h_tokens`` is the part of ``cache_write_tokens`` written to a one-hour cache
    (a cache breakpoint's ``ttl: "1h"``), billed at its own, higher rate; the rest of the writes
    lived five minutes (or the vendor has one lifetime only)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class Native:
    """Fields of an upstream's answer the core does not model (log probabilities, citations,
    a service tier...), as the upstream's dialect ``origin`` wrote them, shaped like its wire
    JSON at the level they were found (or that level whole: an answer's top level, its usage):
    the answer's side of ``ChatRequest.extra``. An encoder of the same dialect writes them with
    what the core models written over them (a placeholder it writes for a field the core does
    not model, OpenAI's ``logprobs: null``, gives way); every other leaves them out. Not
    frozen, for the cost of making one per answer; never changed once made.

    ``text`` is the answer text they describe (their token log probabilities, citation
    offsets), ``refusal`` the refusal text (a refusal's tokens have log probabilities too): a
    stage that rewrote either (an output guardrail's redaction) makes them stale, and the
    encoder then leaves out what would no longer fit or would reveal what was removed.
    """

    origin: str
    fields: Mapping[str, Any]
    text: str | None = None
    refusal: str | None = None


@dataclass(slots=True)
class Choice:
    index: int
    message: Message
    finish_reason: FinishReason | None
    # The choice's unmodelled fields (its message's under ``"message"``), when it has any.
    native: Native | None = None


@dataclass(slots=True)
class ChatResult:
    """A whole (non-streamed) answer; ``upstream_model`` is the model the vendor says it used."""

    choices: list[Choice]
    usage: Usage | None
    upstream_model: str | None = None
    upstream_id: str | None = None
    system_fingerprint: str | None = None
    # The answer's top level as the upstream wrote it (its usage with it), when it holds
    # fields the core does not model (``service_tier``, token details...).
    native: Native | None = None


# Between system blocks joined into one text.
BLOCK_SEPARATOR = "\n\n"

# Characters per token, for estimates made before (or without) the upstream's own count.
CHARS_PER_TOKEN = 4


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """A rough prompt size (text only), for context checks and limit reservations."""
    # The text parts' lengths, summed where they are: no message's text is joined to be measured.
    chars = 0
    for message in request.messages:
        for part in message.content:
            if isinstance(part, TextPart):
                chars += len(part.text)
    return chars // CHARS_PER_TOKEN
