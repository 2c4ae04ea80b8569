"""The provider interface: one adapter per upstream wire API, registered by type name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.core.errors import InvalidRequest, UpstreamError
from modelyard.core.events import StreamEvent
from modelyard.core.timeouts import CallTimeouts
from modelyard.providers.transport import Transport

# orjson refuses to encode containers nested deeper than this (its own recursion limit).
MAX_JSON_DEPTH = 254


def encode_body(body: Mapping[str, Any]) -> bytes:
    """An upstream request body as JSON. A client value nested deeper than JSON encoders go
    (orjson stops at 254 levels; vendors' parsers sooner) is the client's error: a 400 naming
    the field, not a failure of the target."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError as exc:
        # Only on failure: find the field to name (the deepest), without recursion.
        field = max(body, key=lambda k: _depth(body[k]), default=None)
        raise InvalidRequest(
            f"{field or 'the request'}: nested too deeply to send upstream; "
            f"at most {MAX_JSON_DEPTH - 4} levels are accepted",
            param=field,
        ) from exc


def _depth(value: object) -> int:
    """How deeply ``value`` nests, counted level by level (no recursion) up to the limit."""
    depth, level = 0, [value]
    while level and depth <= MAX_JSON_DEPTH:
        containers = [v for v in level if isinstance(v, dict | list | tuple)]
        if not containers:
            break
        depth += 1
        level = [i for c in containers for i in (c.values() if isinstance(c, dict) else c)]
    return depth


def token_count(value: object) -> int:
    """A usage count from an upstream: absent or null is 0; a string, a fraction or a negative
    number is a broken answer (``ValueError``: unreadable, for the attempt loop), never a count
    to meter (a negative one would refund a budget, a silent 0 make the call free)."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError("a usage count is not a whole number of tokens")


class ProviderOptions(BaseModel):
    """Adapter-specific settings. A provider type's subclass declares its fields, each with a
    ``description``; unknown options are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """What an adapter needs to reach one configured provider (decoupled from the config file)."""

    name: str
    type: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)
    timeouts: CallTimeouts = field(default_factory=CallTimeouts)
    options: Mapping[str, str | int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallContext:
    """Per-call facts an adapter may forward upstream (never secrets)."""

    request_id: str
    client_id: str | None = None
    # A routing target's own timeouts, overriding the provider's for this call.
    timeouts: CallTimeouts | None = None
    # W3C trace context of this attempt's client span (tracing on), sent upstream.
    traceparent: str | None = None


class Provider(ABC):
    """An upstream. ``model`` is the vendor's model name, already resolved by routing."""

    def __init__(self, settings: ProviderSettings, transport: Transport) -> None:
        self.settings = settings
        self.transport = transport

    # The options this provider type accepts (a config's ``providers.<name>.options``): checked
    # at config load, shown in the config's JSON schema; the base accepts none.
    Options: ClassVar[type[ProviderOptions]] = ProviderOptions
    # The environment variable a config usually names for this type's key; None: no key needed.
    KEY_ENV: ClassVar[str | None] = None

    def timeouts(self, ctx: CallContext) -> CallTimeouts:
        """The timeouts for this call: the target's own when it has them, else the provider's."""
        return ctx.timeouts or self.settings.timeouts

    @property
    def name(self) -> str:
        return self.settings.name

    def _json(self, body: bytes | str) -> dict[str, Any]:
        """An upstream's JSON object body; anything else is the upstream's failure."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(
                f"{self.error_label()}: the upstream sent a body that is not JSON"
            ) from exc
        if not isinstance(data, dict):
            raise UpstreamError(
                f"{self.error_label()}: the upstream sent JSON that is not an object"
            )
        return data

    def error_label(self) -> str:
        """How errors and logs name this provider: ``provider 'name'``."""
        return f"provider {self.settings.name!r}"

    @abstractmethod
    async def chat(self, request: ChatRequest, model: str, ctx: CallContext) -> ChatResult: ...

    @abstractmethod
    def stream(
        self, request: ChatRequest, model: str, ctx: CallContext
    ) -> AsyncIterator[StreamEvent]:
        """Stream events; a call that fails early raises ``ModelyardError`` before any event."""

    def stream_batches(
        self, request: ChatRequest, model: str, ctx: CallContext
    ) -> AsyncIterator[list[StreamEvent]]:
        """The stream's events in batches, never empty: the events that arrived together (one
        read from the upstream) in one list, so that the gateway relays and sends them as one.
        By default each event alone; ``HttpAdapter`` batches by read."""
        return _singly(self.stream(request, model, ctx))

    @abstractmethod
    async def embed(
        self, request: EmbeddingRequest, model: str, ctx: CallContext
    ) -> EmbeddingResult: ...

    async def aclose(self) -> None:
        """Release anything the adapter holds beyond the shared transport."""


async def _singly(events: AsyncIterator[StreamEvent]) -> AsyncIterator[list[StreamEvent]]:
    try:
        async for event in events:
            yield [event]
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
