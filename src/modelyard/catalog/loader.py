"""Build a catalog for one config: the shipped facts plus the config's price overrides.

The shipped data (genai-prices' bundled snapshot and our ``data/facts.json``) is parsed once per
process and cached at module level (see ``genai.py`` and ``facts.py``); building a catalog per
config reload only converts the handful of overrides. genai-prices' snapshot is parsed only when
the config has a provider it prices: the catalog built for a gateway of self-hosted providers
never reads it (the listing, ``Catalog.search``, reads it at its first use).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol

from modelyard.catalog import genai
from modelyard.catalog.facts import all_facts
from modelyard.catalog.models import Catalog
from modelyard.catalog.pricing import ModelPrices, dollars, with_one_hour_rule


class PriceSpec(Protocol):
    """What a config price entry carries (``config.schema.PriceConfig``): dollars per million."""

    @property
    def input(self) -> float: ...
    @property
    def output(self) -> float: ...
    @property
    def cached_input(self) -> float | None: ...
    @property
    def cache_write(self) -> float | None: ...
    @property
    def reasoning(self) -> float | None: ...
    @property
    def cache_write_1h(self) -> float | None: ...


def price_overrides(
    specs: Mapping[str, PriceSpec], provider_types: Mapping[str, str] | None = None
) -> dict[str, ModelPrices]:
    """Config prices keyed ``"<provider name>/<model>"`` as exact decimals (the digits the
    operator wrote, not the float's binary expansion). An entry without a one-hour cache-write
    price gets the vendor's rule, when ``provider_types`` (provider name -> type) names its
    provider's type and the vendor has one: done here, once per config, not per request."""
    types = provider_types or {}
    out: dict[str, ModelPrices] = {}
    for key, spec in specs.items():
        provider, _, model = key.partition("/")
        kind = types.get(provider)
        prices = _prices(spec)
        out[key] = prices if kind is None else with_one_hour_rule(prices, kind, model)
    return out


def _prices(spec: PriceSpec) -> ModelPrices:
    return ModelPrices(
        input=dollars(spec.input),
        output=dollars(spec.output),
        cached_input=_optional(spec.cached_input),
        cache_write=_optional(spec.cache_write),
        reasoning=_optional(spec.reasoning),
        source="config",
        cache_write_1h=_optional(spec.cache_write_1h),
    )


def _optional(value: float | None) -> Decimal | None:
    return None if value is None else dollars(value)


def build_catalog(
    prices: Mapping[str, PriceSpec] | None = None,
    provider_types: Mapping[str, str] | None = None,
) -> Catalog:
    """A catalog with the shipped facts and these config price overrides (``provider_types``:
    each provider name's type, the config's; None: any). Called at start-up and at each reload
    (off the event loop); it loads the shipped data if not yet loaded, the list prices only if
    a provider of those types has them, so that no lookup parses them later on a request path.
    The types also give a price override the vendor's one-hour cache-write rule."""
    if provider_types is None or genai.needs_prices(provider_types.values()):
        genai.load()
    all_facts()
    return Catalog(price_overrides(prices or {}, provider_types))
