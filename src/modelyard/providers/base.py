"""The provider interface: one adapter per upstream wire API, registered by type name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from modelyard.core.chat import ChatRequest, ChatResult
from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.core.events import StreamEvent
from modelyard.providers.transport import CallTimeouts, Transport


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """What an adapter needs to reach one configured provider (decoupled from the config file)."""

    name: str
    type: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)
    timeouts: CallTimeouts = field(default_factory=CallTimeouts)


@dataclass(frozen=True, slots=True)
class CallContext:
    """Per-call facts an adapter may forward upstream (never secrets)."""

    request_id: str
    client_id: str | None = None


class Provider(ABC):
    """An upstream. ``model`` is the vendor's model name, already resolved by routing."""

    def __init__(self, settings: ProviderSettings, transport: Transport) -> None:
        self.settings = settings
        self.transport = transport

    @property
    def name(self) -> str:
        return self.settings.name

    @abstractmethod
    async def chat(self, request: ChatRequest, model: str, ctx: CallContext) -> ChatResult: ...

    @abstractmethod
    def stream(
        self, request: ChatRequest, model: str, ctx: CallContext
    ) -> AsyncIterator[StreamEvent]:
        """Stream events; a call that fails early raises ``ModelyardError`` before any event."""

    @abstractmethod
    async def embed(
        self, request: EmbeddingRequest, model: str, ctx: CallContext
    ) -> EmbeddingResult: ...

    async def aclose(self) -> None:
        """Release anything the adapter holds beyond the shared transport."""
