"""Prices (and context windows) from ``genai-prices``' bundled data, read offline.

Only ``genai_prices.data`` is read: it is the snapshot shipped inside the installed wheel. We never
use ``UpdatePrices`` (the optional background thread that fetches a newer snapshot from GitHub)
nor ``calc_price`` (which would consult a snapshot such a thread had installed), so nothing here
touches the network and prices change only when the pinned dependency does.

Parsing the bundled data costs about half a second of CPU and 4.7 MB, so it happens once per
process, only when something needs list prices (``needs_prices``: a configured provider whose type
has them, the catalog listing, an explicit lookup), and is cached at module level; every catalog
built afterwards (each config reload) reuses it. A gateway whose providers are all self-hosted or
generic never imports ``genai_prices`` at all.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from modelyard.catalog.pricing import (
    ModelPrices,
    PricePeriod,
    PriceSchedule,
    Rate,
    Tiered,
    with_one_hour_rule,
)

if TYPE_CHECKING:
    from genai_prices import types as gp

# Our provider types -> the genai-prices provider id whose prices they pay. Types without an
# entry serve models at no list price we could know (self-hosted servers, generic endpoints).
PROVIDER_IDS: Final[Mapping[str, str | None]] = {
    "openai": "openai",
    "azure_openai": "azure",  # falls back to OpenAI's prices inside genai-prices
    "anthropic": "anthropic",
    "gemini": "google",
    "bedrock": "aws",
    "xai": "x-ai",
    "deepseek": "deepseek",
    "mistral": "mistral",
    "groq": "groq",
    "together": "together",
    "fireworks": "fireworks",
    "openrouter": "openrouter",
    "ollama": None,
    "vllm": None,
    "openai_compatible": None,
    "local": None,
}


def needs_prices(provider_types: Iterable[str]) -> bool:
    """Whether a provider of one of these types is priced by genai-prices' data (a type it
    does not list, such as ``vllm`` or a plugin's, never looks it up)."""
    return any(PROVIDER_IDS.get(kind) is not None for kind in provider_types)


@dataclass(frozen=True, slots=True)
class SourceModel:
    """One model of the bundled data, already converted to our types."""

    id: str
    name: str | None
    context_window: int | None
    deprecated: bool
    prices: PriceSchedule | None


@functools.cache
def _providers() -> dict[str, gp.Provider]:
    from genai_prices.data import providers

    return {p.id: p for p in providers}


def load() -> None:
    """Parse the bundled data now (about half a second, once per process), so that no request
    pays for it on the event loop."""
    _providers()


def _all_providers() -> list[gp.Provider]:
    return list(_providers().values())


@functools.cache
def provider_models(provider_id: str) -> tuple[SourceModel, ...]:
    """Every model genai-prices lists for that provider (not its fallbacks)."""
    provider = _providers().get(provider_id)
    if provider is None:
        return ()
    return tuple(_convert(m, provider_id) for m in provider.models)


def find(provider_id: str, model: str) -> SourceModel | None:
    """genai-prices' own matching (snapshot dates, aliases, fallback providers), or None."""
    provider = _providers().get(provider_id)
    if provider is None:
        return None
    found = provider.find_model(model, all_providers=_all_providers())
    if found is None:
        return None
    # Converted on every call: a catalog looks each (provider type, model) up once and keeps
    # the answer (``Catalog.lookup``), and the prices it holds carry their integer rates.
    return _convert(found, provider_id)


def _convert(model: gp.ModelInfo, provider_id: str) -> SourceModel:
    return SourceModel(
        id=model.id,
        name=model.name,
        context_window=model.context_window,
        deprecated=bool(model.deprecated),
        prices=_schedule(model, provider_id),
    )


def _schedule(model: gp.ModelInfo, provider_id: str) -> PriceSchedule | None:
    from genai_prices import types as gpt

    if isinstance(model.prices, gpt.ModelPrice):
        prices = _prices(model.prices, provider_id, model.id)
        return None if prices is None else PriceSchedule.flat(prices)
    periods: list[PricePeriod] = []
    for conditional in model.prices:
        prices = _prices(conditional.prices, provider_id, model.id)
        if prices is None:
            continue
        constraint = conditional.constraint
        if isinstance(constraint, gpt.StartDateConstraint):
            periods.append(PricePeriod(prices, start=constraint.start_date))
        elif isinstance(constraint, gpt.TimeOfDateConstraint):
            daily = (_utc(constraint.start_time), _utc(constraint.end_time))
            periods.append(PricePeriod(prices, daily=daily))
        else:
            periods.append(PricePeriod(prices))
    return PriceSchedule(tuple(periods)) if periods else None


def _utc(value: time) -> time:
    if value.tzinfo is None:
        return value
    moment = datetime.combine(datetime(1970, 1, 1).date(), value).astimezone(UTC)
    return moment.time()


def _prices(price: gp.ModelPrice, provider_id: str, model_id: str) -> ModelPrices | None:
    """Token prices only; a model priced by other units (audio hours, pages) has none here.

    A model with an input price and no output price (embeddings) gets an output price of 0: it
    produces no output tokens to price. A one-hour cache write is priced by the data's own rate
    (``cache_write_1h_mtok``), else by the vendor's documented rule (``one_hour_rule``).
    """
    inp = _rate(price.input_mtok)
    if inp is None:
        return None
    prices = ModelPrices(
        input=inp,
        output=_rate(price.output_mtok) or Decimal(0),
        cached_input=_rate(price.cache_read_mtok),
        cache_write=_rate(price.cache_write_mtok),
        reasoning=_rate(price.output_reasoning_mtok),
        cache_write_1h=_rate(price.cache_write_1h_mtok),
    )
    return with_one_hour_rule(prices, provider_id, model_id)


def _rate(value: Decimal | gp.TieredPrices | None) -> Rate | None:
    if value is None or isinstance(value, Decimal):
        return value
    return Tiered(value.base, tuple((t.start, t.price) for t in value.tiers))
