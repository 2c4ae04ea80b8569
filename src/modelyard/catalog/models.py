"""Facts about models that drive capability checks (and, later, prices).

Unknown facts are ``None``: the gateway then leaves the decision to the upstream instead of
refusing something the model might well support.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    vendor: str
    context_window: int | None = None
    max_output: int | None = None
    images: bool | None = None
    tools: bool | None = None
    json_schema: bool | None = None


class Catalog:
    """Model facts by ``(provider type, model)``; entries may be added at start-up."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], ModelInfo] = {}

    def add(self, provider_type: str, info: ModelInfo) -> None:
        self._entries[(provider_type, info.id)] = info

    def lookup(self, provider_type: str, model: str) -> ModelInfo | None:
        return self._entries.get((provider_type, model))


def local_model_info(name: str, context_window: int | None) -> ModelInfo:
    """A GGUF served by the embedded runtime: text only, no tool calling, JSON by grammar."""
    return ModelInfo(
        id=name,
        vendor="local",
        context_window=context_window,
        images=False,
        tools=False,
        json_schema=True,
    )
