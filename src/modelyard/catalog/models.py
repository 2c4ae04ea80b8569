"""Facts about models that drive capability checks, routing by cost, metering and listings.

Unknown facts are ``None``: the gateway then leaves the decision to the upstream instead of
refusing something the model might well support. Where the facts come from, and why, is in
``catalog/README.md``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from modelyard.catalog import genai
from modelyard.catalog.facts import Facts, all_facts, candidates, find_facts
from modelyard.catalog.pricing import FREE, ModelPrices, PriceSchedule, base_rate

Capability = Literal["tools", "images", "json_schema", "reasoning"]
CAPABILITIES: tuple[Capability, ...] = ("tools", "images", "json_schema", "reasoning")
# Lookups are keyed by config targets, a handful per deployment; the bound only guards misuse.
_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    vendor: str
    context_window: int | None = None
    max_output: int | None = None
    images: bool | None = None
    tools: bool | None = None
    json_schema: bool | None = None
    reasoning: bool | None = None
    input_modalities: tuple[str, ...] | None = None
    # List prices over time; ``Catalog.price`` applies config overrides and picks the period.
    prices: PriceSchedule | None = None
    # The provider type this entry is served by (prices differ between hosts); None: any.
    provider_type: str | None = None
    deprecated: bool = False

    def capability(self, name: Capability) -> bool | None:
        value: bool | None = getattr(self, name)
        return value

    def list_prices(self, when: datetime | None = None) -> ModelPrices | None:
        return None if self.prices is None else self.prices.at(when)


class Catalog:
    """Model facts by ``(provider type, model)``: the shipped facts (unless ``shipped`` is
    False), entries added at start-up (local models), and config price overrides keyed
    ``"<provider name>/<model>"``."""

    def __init__(
        self, overrides: Mapping[str, ModelPrices] | None = None, *, shipped: bool = True
    ) -> None:
        self._entries: dict[tuple[str, str], ModelInfo] = {}
        self._overrides = dict(overrides or {})
        self._shipped = shipped
        self._cache: dict[tuple[str, str], ModelInfo | None] = {}

    def add(self, provider_type: str, info: ModelInfo) -> None:
        self._entries[(provider_type, info.id)] = info
        self._cache.clear()

    def lookup(self, provider_type: str, model: str) -> ModelInfo | None:
        """Exact entries first, then the shipped facts by normalised id (see ``facts``)."""
        key = (provider_type, model)
        if key in self._cache:
            return self._cache[key]
        found = self._entries.get(key)
        if found is None and self._shipped and provider_type != "local":
            found = resolve(provider_type, model)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = found
        return found

    def price(
        self,
        provider_name: str,
        provider_type: str,
        model: str,
        when: datetime | None = None,
    ) -> ModelPrices | None:
        """The config's override for ``provider_name/model``, else free for local models, else
        the catalog's list price at ``when`` (default now); None when unknown."""
        override = self._overrides.get(f"{provider_name}/{model}")
        if override is not None:
            return override
        if provider_type == "local":
            return FREE
        info = self.lookup(provider_type, model)
        return None if info is None else info.list_prices(when)

    def search(
        self,
        vendor: str | None = None,
        capability: Capability | None = None,
        max_input_price: Decimal | float | None = None,
        min_context: int | None = None,
        text: str | None = None,
    ) -> list[ModelInfo]:
        """Shipped and added models matching every filter given, sorted by vendor then id.

        ``vendor`` matches the model's maker or the provider type serving it (``meta`` finds
        Llama everywhere, ``groq`` everything on Groq); ``max_input_price`` is dollars per
        million input tokens at the base tier (models without a price are left out);
        ``text`` is a case-insensitive substring of the id.
        """
        pool: Iterable[ModelInfo] = list(self._entries.values())
        if self._shipped:
            pool = [*pool, *shipped_models()]
        limit = None if max_input_price is None else Decimal(str(max_input_price))
        needle = text.lower() if text else None
        found = [
            info
            for info in pool
            if (vendor is None or vendor.lower() in (info.vendor, info.provider_type))
            and (capability is None or info.capability(capability) is True)
            and (min_context is None or (info.context_window or 0) >= min_context)
            and (needle is None or needle in info.id.lower())
            and (limit is None or _input_price_at_most(info, limit))
        ]
        return sorted(found, key=lambda i: (i.vendor, i.id, i.provider_type or ""))


def _input_price_at_most(info: ModelInfo, limit: Decimal) -> bool:
    prices = info.list_prices()
    return prices is not None and base_rate(prices.input) <= limit


def local_model_info(name: str, context_window: int | None) -> ModelInfo:
    """A GGUF served by the embedded runtime: text only; tool calls and JSON by grammar."""
    return ModelInfo(
        id=name,
        vendor="local",
        context_window=context_window,
        images=False,
        tools=True,
        json_schema=True,
        reasoning=False,
        input_modalities=("text",),
        provider_type="local",
    )


def resolve(provider_type: str, model: str) -> ModelInfo | None:
    """The shipped facts and list prices of ``model`` as served by ``provider_type``."""
    provider_id = genai.PROVIDER_IDS.get(provider_type)
    source = None
    if provider_id is not None:
        for candidate in candidates(model):
            source = genai.find(provider_id, candidate)
            if source is not None:
                break
    facts = find_facts(model, source.id) if source is not None else find_facts(model)
    if source is None and facts is None:
        return None
    return merge(provider_type, source, facts, model)


def merge(
    provider_type: str | None,
    source: genai.SourceModel | None,
    facts: Facts | None,
    model: str,
) -> ModelInfo:
    """genai-prices' prices and context window, our facts for everything else (and for the
    context window where genai-prices has none)."""
    context = source.context_window if source is not None else None
    if context is None and facts is not None:
        context = facts.context_window
    # The price source's id names what is priced (a dated snapshot, a Bedrock profile).
    model_id = source.id if source is not None else facts.id if facts is not None else model
    return ModelInfo(
        id=model_id,
        vendor=facts.vendor if facts is not None else _vendor(model, provider_type),
        context_window=context,
        max_output=facts.max_output if facts else None,
        images=facts.images if facts else None,
        tools=facts.tools if facts else None,
        json_schema=facts.json_schema if facts else None,
        reasoning=facts.reasoning if facts else None,
        input_modalities=facts.input_modalities if facts else None,
        prices=source.prices if source is not None else None,
        provider_type=provider_type,
        deprecated=source.deprecated if source is not None else False,
    )


@functools.cache
def shipped_models() -> tuple[ModelInfo, ...]:
    """Every model the shipped data knows, once per provider type serving it (built once);
    curated models no host lists come last, with no provider type and no price."""
    listing: list[ModelInfo] = []
    seen_facts: set[str] = set()
    for provider_type, provider_id in genai.PROVIDER_IDS.items():
        if provider_id is None:
            continue
        for source in genai.provider_models(provider_id):
            facts = find_facts(source.id)
            if facts is not None:
                seen_facts.add(facts.id)
            listing.append(merge(provider_type, source, facts, source.id))
    listing.extend(merge(f.home, None, f, f.id) for f in all_facts() if f.id not in seen_facts)
    return tuple(listing)


# Makers by organisation prefix (``meta-llama/...``) or id prefix, for models without our facts.
_ORG_VENDORS = {
    "meta-llama": "meta",
    "meta-models": "meta",
    "mistralai": "mistral",
    "deepseek-ai": "deepseek",
    "x-ai": "xai",
    "google": "google",
    "qwen": "qwen",
    "moonshotai": "moonshot",
    "openai": "openai",
    "anthropic": "anthropic",
}
_ID_VENDORS = (
    ("llama", "meta"),
    ("meta.", "meta"),
    ("gemma", "google"),
    ("gemini", "google"),
    ("google.", "google"),
    ("mistral", "mistral"),
    ("mixtral", "mistral"),
    ("qwen", "qwen"),
    ("deepseek", "deepseek"),
    ("gpt-", "openai"),
    ("openai.", "openai"),
    ("claude", "anthropic"),
    ("anthropic.", "anthropic"),
    ("amazon.", "amazon"),
    ("nova", "amazon"),
    ("grok", "xai"),
    ("kimi", "moonshot"),
)
_HOST_VENDORS = {
    "openai": "openai",
    "azure_openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "xai": "xai",
    "deepseek": "deepseek",
    "mistral": "mistral",
}


def _vendor(model: str, provider_type: str | None) -> str:
    lowered = model.lower()
    for region in ("global.", "regional.", "us.", "eu.", "apac."):
        lowered = lowered.removeprefix(region)
    if "/" in lowered:
        org = lowered.split("/", 1)[0]
        return _ORG_VENDORS.get(org, org)
    for prefix, vendor in _ID_VENDORS:
        if lowered.startswith(prefix):
            return vendor
    return _HOST_VENDORS.get(provider_type or "", provider_type or "unknown")
