"""The chat use case: resolve the deployment, check capabilities, call the upstream."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from modelyard.core.chat import ChatRequest, ChatResult, ResponseFormat
from modelyard.core.errors import InvalidRequest, UnsupportedCapability
from modelyard.core.events import StreamEvent
from modelyard.providers.base import CallContext
from modelyard.services.gateway import Gateway, Resolved

# Target ``params`` that map onto modelled request fields; the rest travel as extra fields.
_MODELLED = frozenset({"temperature", "top_p", "max_tokens", "seed", "n", "user"})


@dataclass(slots=True)
class Served:
    """Who served a request: reported to the client in headers and kept for metering."""

    deployment: str
    provider: str
    model: str
    attempts: int = 1


@dataclass(slots=True)
class ChatStream:
    served: Served
    events: AsyncGenerator[StreamEvent, None]


class ChatService:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def _pick(self, request: ChatRequest) -> tuple[Resolved, ChatRequest]:
        candidates = self._gateway.resolve(request.model)
        chosen = candidates[0]
        self._check_capabilities(request, chosen)
        return chosen, apply_params(request, chosen.target.params)

    async def complete(self, request: ChatRequest, ctx: CallContext) -> tuple[ChatResult, Served]:
        chosen, upstream_request = self._pick(request)
        result = await chosen.provider.chat(upstream_request, chosen.target.model, ctx)
        return result, _served(chosen)

    async def stream(self, request: ChatRequest, ctx: CallContext) -> ChatStream:
        """Open the stream and wait for its first event, so early failures raise here."""
        chosen, upstream_request = self._pick(request)
        events = chosen.provider.stream(upstream_request, chosen.target.model, ctx)
        try:
            first = await anext(events)
        except StopAsyncIteration:
            first = None
        return ChatStream(_served(chosen), _prepend(first, events))

    def _check_capabilities(self, request: ChatRequest, chosen: Resolved) -> None:
        info = self._gateway.catalog.lookup(chosen.provider.settings.type, chosen.target.model)
        if info is None:
            return
        model = chosen.deployment.name
        if info.images is False and request.has_images():
            raise UnsupportedCapability("image input", model, param="messages")
        if info.tools is False and request.tools:
            raise UnsupportedCapability("tools", model, param="tools")
        fmt: ResponseFormat | None = request.response_format
        if info.json_schema is False and fmt is not None and fmt.kind == "json_schema":
            raise UnsupportedCapability("json_schema output", model, param="response_format")
        if info.max_output is not None and (request.max_tokens or 0) > info.max_output:
            raise InvalidRequest(
                f"max_tokens {request.max_tokens} exceeds {model!r}'s limit of {info.max_output}",
                param="max_tokens",
            )


def apply_params(request: ChatRequest, params: dict[str, Any] | Any) -> ChatRequest:
    """The request with a target's parameter overrides applied (the operator's word wins)."""
    if not params:
        return request
    modelled = {k: v for k, v in params.items() if k in _MODELLED}
    extra = {k: v for k, v in params.items() if k not in _MODELLED}
    if extra:
        modelled["extra"] = {**request.extra, **extra}
    return dataclasses.replace(request, **modelled)


def _served(chosen: Resolved) -> Served:
    return Served(chosen.deployment.name, chosen.provider.name, chosen.target.model)


async def _prepend(
    first: StreamEvent | None, rest: AsyncIterator[StreamEvent]
) -> AsyncGenerator[StreamEvent, None]:
    try:
        if first is not None:
            yield first
        async for event in rest:
            yield event
    finally:
        close = getattr(rest, "aclose", None)
        if close is not None:
            await close()
