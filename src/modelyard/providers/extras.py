"""Which of a client's unmodelled fields (``ChatRequest.extra``) reach an upstream.

Each adapter states its rule once, as an ``ExtrasPolicy``; ``passthrough_extras`` applies it.
A field is looked at in this order:

1. ``origins``: when set, extras from a client of another dialect are not sent at all; only
   the operator's target ``params`` (``request.overrides``) are. (OpenAI-compatible upstreams:
   they reject unknown fields, so an Anthropic client's ``thinking`` must not reach them.)
2. ``refused``: a field the upstream cannot honour and that would change the answer is refused
   with a 400 naming it, unless its value asks for nothing (``n: 1``, ``logprobs: false``).
3. ``dropped`` (bookkeeping that changes no answer) and ``consumed`` (read by the codec itself,
   e.g. ``reasoning_effort``) are not sent; ``kept_values`` drops a field whose value means
   nothing upstream (OpenAI's service tiers at Anthropic).
   ``foreign_refused`` applies to extras of another dialect that step 1 does not send: a field
   only that dialect's vendor can honour (Gemini's ``cached_content``) is refused by name
   instead of lost.
4. ``allowed``: when set, only these names are sent and any other is refused by name (Bedrock
   Converse rejects unknown top-level fields); when None, every remaining field is sent as it
   is, whatever the client's dialect (Anthropic: an OpenAI SDK client may send ``top_k`` or
   ``thinking`` through ``extra_body``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from modelyard.core.chat import ChatRequest
from modelyard.core.errors import InvalidRequest

# Extras from Gemini-dialect clients that only a Gemini upstream can honour (the names
# ``protocols.gemini.decode`` gives them): a context cache and Gemini's own tools (googleSearch,
# codeExecution...). Every other adapter refuses them by name.
GEMINI_ONLY = frozenset({"cached_content", "gemini_tools"})
ALWAYS_REFUSED: Final[Mapping[str, Callable[[Any], bool]]] = MappingProxyType(
    dict.fromkeys(GEMINI_ONLY, lambda _value: True)
)


@dataclass(frozen=True, slots=True)
class ExtrasPolicy:
    api: str
    origins: tuple[str, ...] | None = None
    refused: Mapping[str, Callable[[Any], bool]] = field(default_factory=dict)
    dropped: frozenset[str] = frozenset()
    consumed: frozenset[str] = frozenset()
    kept_values: Mapping[str, tuple[object, ...]] = field(default_factory=dict)
    allowed: frozenset[str] | None = None
    foreign_refused: frozenset[str] = frozenset()
    # Appended to the refusal of a name outside ``allowed``.
    hint: str = ""
    # Nothing to filter: the extras go out as they are (the common case, kept cheap).
    plain: bool = field(init=False)

    def __post_init__(self) -> None:
        filters = (self.refused, self.dropped, self.consumed, self.kept_values)
        plain = not any(filters) and self.allowed is None
        object.__setattr__(self, "plain", plain)


def passthrough_extras(request: ChatRequest, policy: ExtrasPolicy, provider: str) -> dict[str, Any]:
    """The ``extra`` fields to send as they are; raises on fields that cannot be honoured."""
    if policy.origins is not None and request.extra_origin not in policy.origins:
        for key in policy.foreign_refused.intersection(request.extra):
            raise unsupported_field(key, provider, "it needs a Gemini upstream")
        return dict(request.overrides)
    if policy.plain:
        return dict(request.extra)
    out: dict[str, Any] = {}
    for key, value in request.extra.items():
        refuse = policy.refused.get(key)
        if refuse is not None:
            if refuse(value):
                raise unsupported_field(key, provider)
            continue
        if key in policy.dropped or key in policy.consumed:
            continue
        kept = policy.kept_values.get(key)
        if kept is not None and value not in kept:
            continue
        if policy.allowed is not None and key not in policy.allowed:
            raise InvalidRequest(
                f"{key}: provider {provider!r} ({policy.api}) has no such parameter{policy.hint}",
                param=key,
                code="unsupported_parameter",
            )
        out[key] = value
    return out


def unsupported_field(field_name: str, provider: str, why: str = "") -> InvalidRequest:
    reason = f" ({why})" if why else ""
    return InvalidRequest(
        f"{field_name}: provider {provider!r} cannot honour this parameter{reason}; remove it "
        "or send its default value",
        param=field_name,
        code="unsupported_parameter",
    )


def native_tool(
    request: ChatRequest, index: int, dialects: tuple[str, ...], provider: str, api: str
) -> dict[str, Any]:
    """The ``index``-th tool as its client wrote it, when that client spoke one of ``dialects``
    (the upstream's own API); a tool only another vendor runs is refused by name."""
    tool = request.tools[index]
    native = tool.native or {}
    if request.extra_origin not in dialects:
        kind = native.get("type")
        raise InvalidRequest(
            f"tools[{index}]: tool {tool.name!r} (type {kind!r}) is run by the vendor of the "
            f"API it was written for; provider {provider!r} ({api}) cannot run it. Remove it, "
            "or call a deployment whose targets speak that API",
            param=f"tools[{index}].type",
            code="unsupported_tool",
        )
    return dict(native)


def refuse_native_tools(request: ChatRequest, provider: str, api: str) -> None:
    """For an upstream that runs no vendor tools: a 400 naming the first such tool."""
    for i, tool in enumerate(request.tools):
        if tool.native is not None:
            native_tool(request, i, (), provider, api)
