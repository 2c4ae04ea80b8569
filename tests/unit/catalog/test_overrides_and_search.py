"""Config overrides win, local models are free, search filters, and nothing goes online."""

from __future__ import annotations

import threading
from decimal import Decimal

import genai_prices.data_snapshot
import pytest

from modelyard.catalog import Catalog, base_rate, build_catalog, cost_micros, local_model_info
from modelyard.catalog.genai import provider_models
from modelyard.config.schema import PriceConfig
from modelyard.core.chat import Usage


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog()


def test_a_config_override_wins_over_the_list_price():
    catalog = build_catalog(
        {"my-openai/gpt-4o": PriceConfig(input=1.1, output=4.4, cached_input=0.1)}
    )
    prices = catalog.price("my-openai", "openai", "gpt-4o")
    assert prices is not None
    assert (prices.input, prices.output, prices.cached_input, prices.source) == (
        Decimal("1.1"),  # the digits written in the config, not the float's expansion
        Decimal("4.4"),
        Decimal("0.1"),
        "config",
    )
    # Another provider name of the same type pays the list price.
    other = catalog.price("other-openai", "openai", "gpt-4o")
    assert other is not None and other.input == Decimal("2.5")
    usage = Usage(input_tokens=1_000, cached_input_tokens=500, output_tokens=100)
    assert cost_micros(prices, usage) == 550 + 50 + 440


def test_local_models_are_free_unless_overridden():
    catalog = build_catalog({"local/big": PriceConfig(input=0.5, output=0.5)})
    catalog.add("local", local_model_info("small", None))
    usage = Usage(input_tokens=10_000, output_tokens=10_000)
    free = catalog.price("local", "local", "small")
    assert free is not None and cost_micros(free, usage) == 0
    paid = catalog.price("local", "local", "big")
    assert paid is not None and cost_micros(paid, usage) == 10_000


def test_unknown_prices_are_none(catalog: Catalog):
    assert catalog.price("mine", "openai_compatible", "gpt-4o") is None
    assert catalog.price("mine", "openai", "no-such-model-anywhere") is None


def test_search_by_vendor_capability_price_context_and_text(catalog: Catalog):
    found = catalog.search(vendor="meta", capability="images", text="llama")
    assert found
    assert all(i.vendor == "meta" and i.images is True for i in found)
    cheap = catalog.search(vendor="openai", max_input_price=0.2)
    assert any(i.id == "gpt-4o-mini" for i in cheap)
    assert not any(i.id == "gpt-4o" for i in cheap)
    for info in cheap:
        prices = info.list_prices()
        assert prices is not None and base_rate(prices.input) <= Decimal("0.2")
    huge = catalog.search(min_context=1_500_000)
    assert huge and all((i.context_window or 0) >= 1_500_000 for i in huge)
    reasoning = catalog.search(vendor="anthropic", capability="reasoning", text="sonnet-4-5")
    assert reasoning and all(i.reasoning is True for i in reasoning)


def test_search_by_host_lists_only_that_host(catalog: Catalog):
    groq = catalog.search(vendor="groq")
    assert groq and all(i.provider_type == "groq" for i in groq)
    assert any(i.vendor == "meta" for i in groq)


def test_search_includes_added_entries():
    catalog = build_catalog()
    catalog.add("local", local_model_info("smollm2-test", 8192))
    found = catalog.search(vendor="local")
    assert [i.id for i in found] == ["smollm2-test"]


def test_the_bundled_data_is_read_offline():
    before = {t.name for t in threading.enumerate()}
    build_catalog().search(text="gpt")
    assert provider_models("openai")
    after = {t.name for t in threading.enumerate()}
    assert "genai_prices:update" not in after - before
    # No updater installed a fetched snapshot: the wheel's data is what we read.
    assert genai_prices.data_snapshot._custom_snapshot is None
