"""Which configs need genai-prices' data, and the same answers whichever way it was loaded."""

from __future__ import annotations

from modelyard.catalog import build_catalog
from modelyard.catalog.genai import needs_prices


def test_only_a_provider_type_with_list_prices_needs_the_price_data() -> None:
    assert not needs_prices([])
    assert not needs_prices(["openai_compatible", "vllm", "local", "ollama", "a_plugins_type"])
    assert needs_prices(["vllm", "openai"])
    assert needs_prices(["bedrock"])


def test_a_catalog_built_without_the_price_data_still_prices_by_it_when_asked() -> None:
    """A lookup the config did not foresee (a listing, an explicit lookup) reads the data at
    its first use: the same prices and the same answer for an unknown model."""
    lazy = build_catalog(provider_types={"p": "vllm"})
    eager = build_catalog()
    for model in ("gpt-4o-mini", "gpt-4o-2024-08-06", "no-such-model-xyz"):
        assert lazy.price("p", "openai", model) == eager.price("p", "openai", model)
    assert lazy.price("p", "openai", "gpt-4o-mini") is not None
    assert lazy.price("p", "openai", "no-such-model-xyz") is None
    assert lazy.search(text="gpt-4o-mini") == eager.search(text="gpt-4o-mini")
