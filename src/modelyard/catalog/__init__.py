"""Facts about models: vendor, context window, max output, modalities, capabilities, prices."""

from modelyard.catalog.loader import build_catalog, price_overrides
from modelyard.catalog.models import (
    CAPABILITIES,
    Capability,
    Catalog,
    ModelInfo,
    local_model_info,
    shipped_models,
)
from modelyard.catalog.pricing import (
    FREE,
    ModelPrices,
    PricePeriod,
    PriceSchedule,
    Tiered,
    base_rate,
    cost_micros,
)

__all__ = [
    "CAPABILITIES",
    "FREE",
    "Capability",
    "Catalog",
    "ModelInfo",
    "ModelPrices",
    "PricePeriod",
    "PriceSchedule",
    "Tiered",
    "base_rate",
    "build_catalog",
    "cost_micros",
    "local_model_info",
    "price_overrides",
    "shipped_models",
]
