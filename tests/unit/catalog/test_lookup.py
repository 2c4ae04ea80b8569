"""Lookups by provider type and model id, with the ids each host really uses."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from modelyard.catalog import Catalog, ModelInfo, build_catalog, local_model_info
from modelyard.catalog.facts import candidates
from modelyard.catalog.genai import PROVIDER_IDS, provider_models
from modelyard.providers.registry import provider_types

LLAMA_BEDROCK = "meta.llama3-3-70b-instruct-v1:0"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog()


def test_every_provider_type_is_mapped_to_a_price_list_or_none():
    assert set(PROVIDER_IDS) == set(provider_types())
    for provider_type, provider_id in PROVIDER_IDS.items():
        if provider_id is not None:
            assert provider_models(provider_id), f"{provider_type}: no models for {provider_id}"
    priced = {t for t, p in PROVIDER_IDS.items() if p is not None}
    assert priced == {
        "openai",
        "azure_openai",
        "anthropic",
        "gemini",
        "bedrock",
        "xai",
        "deepseek",
        "mistral",
        "groq",
        "together",
        "fireworks",
        "openrouter",
    }


@pytest.mark.parametrize(
    ("provider_type", "model", "expected_id", "vendor"),
    [
        ("openai", "gpt-4o", "gpt-4o", "openai"),
        ("openai", "gpt-4o-2024-08-06", "gpt-4o", "openai"),
        ("openai", "o3-mini-2025-01-31", "o3-mini", "openai"),
        ("azure_openai", "gpt-4o-mini", "gpt-4o-mini", "openai"),
        ("anthropic", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet", "anthropic"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "anthropic"),
        (
            "bedrock",
            "anthropic.claude-3-5-sonnet-20241022-v2:0",
            "regional.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "anthropic",
        ),
        (
            "bedrock",
            "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "regional.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "anthropic",
        ),
        (
            "bedrock",
            "us.meta.llama3-3-70b-instruct-v1:0",
            "meta.llama3-3-70b-instruct-v1:0",
            "meta",
        ),
        ("bedrock", "amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0", "amazon"),
        ("gemini", "models/gemini-2.5-flash", "gemini-2.5-flash", "google"),
        ("gemini", "gemini-2.0-flash-001", "gemini-2.0-flash", "google"),
        ("xai", "grok-3-mini", "grok-3-mini", "xai"),
        ("deepseek", "deepseek-chat", "deepseek-chat", "deepseek"),
        ("mistral", "mistral-large-latest", "mistral-large", "mistral"),
        ("groq", "llama-3.3-70b-versatile", "llama-3.3-70b-versatile", "meta"),
        (
            "together",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "meta",
        ),
        ("openrouter", "openai/gpt-4o", "openai/gpt-4o", "openai"),
    ],
)
def test_lookup_normalises_snapshot_profile_and_resource_ids(
    catalog: Catalog, provider_type: str, model: str, expected_id: str, vendor: str
):
    info = catalog.lookup(provider_type, model)
    assert info is not None
    assert (info.id, info.vendor, info.provider_type) == (expected_id, vendor, provider_type)
    assert info.prices is not None


def test_facts_follow_the_model_across_hosts(catalog: Catalog):
    direct = catalog.lookup("anthropic", "claude-3-5-sonnet-20241022")
    bedrock = catalog.lookup("bedrock", "us.anthropic.claude-3-5-sonnet-20241022-v2:0")
    routed = catalog.lookup("openrouter", "anthropic/claude-3.5-sonnet")
    for info in (direct, bedrock, routed):
        assert info is not None
        assert (info.max_output, info.images, info.tools) == (8192, True, True)
    llama_hosts = [
        ("groq", "llama-3.3-70b-versatile"),
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ("fireworks", "accounts/fireworks/models/llama-v3p3-70b-instruct"),
        ("bedrock", "meta.llama3-3-70b-instruct-v1:0"),
        ("vllm", "meta-llama/Llama-3.3-70B-Instruct"),
    ]
    for provider_type, model in llama_hosts:
        info = catalog.lookup(provider_type, model)
        assert info is not None, (provider_type, model)
        assert (info.vendor, info.images, info.tools) == ("meta", False, True), model


def test_capability_facts_of_main_models(catalog: Catalog):
    deepseek = catalog.lookup("deepseek", "deepseek-chat")
    assert deepseek is not None
    assert (deepseek.images, deepseek.json_schema, deepseek.input_modalities) == (
        False,
        False,
        ("text",),
    )
    o3 = catalog.lookup("openai", "o3")
    assert o3 is not None and o3.reasoning is True
    gpt4o = catalog.lookup("openai", "gpt-4o")
    assert gpt4o is not None
    assert (gpt4o.context_window, gpt4o.max_output, gpt4o.reasoning) == (128000, 16384, False)
    gemini = catalog.lookup("gemini", "gemini-2.5-pro")
    assert gemini is not None
    assert gemini.context_window == 1048576  # genai-prices has none: our facts fill it
    assert gemini.input_modalities is not None and "audio" in gemini.input_modalities


def test_snapshot_stripping_never_drops_a_word_of_the_name():
    assert "gpt-4o" not in candidates("gpt-4o-mini")
    assert candidates("gpt-4o-2024-08-06")[-1] == "gpt-4o"
    assert candidates("us.anthropic.claude-3-5-sonnet-20241022-v2:0")[-1] == "claude-3-5-sonnet"
    assert candidates("models/gemini-1.5-pro-002")[-1] == "gemini-1.5-pro"


def test_unknown_models_and_generic_hosts_without_facts_are_none(catalog: Catalog):
    assert catalog.lookup("openai", "no-such-model-anywhere") is None
    assert catalog.lookup("openai_compatible", "model-x") is None
    assert catalog.lookup("local", "gpt-4o") is None  # a local GGUF is not the vendor's model


def test_added_entries_win_and_an_unshipped_catalog_knows_only_them():
    catalog = Catalog(shipped=False)
    assert catalog.lookup("openai", "gpt-4o") is None
    mine = ModelInfo("gpt-4o", "me", context_window=10)
    catalog.add("openai", mine)
    assert catalog.lookup("openai", "gpt-4o") is mine
    shipped = build_catalog()
    shipped.add("local", local_model_info("tiny", 2048))
    info = shipped.lookup("local", "tiny")
    assert info is not None and (info.images, info.tools, info.context_window) == (
        False,
        True,
        2048,
    )


def test_list_prices_come_from_genai_prices(catalog: Catalog):
    prices = catalog.price("my-anthropic", "anthropic", "claude-3-5-sonnet-20241022")
    assert prices is not None
    assert (prices.input, prices.output, prices.cached_input, prices.cache_write) == (
        Decimal(3),
        Decimal(15),
        Decimal("0.3"),
        Decimal("3.75"),
    )
    assert prices.source == "catalog"


def test_time_of_day_prices_are_resolved_at_the_moment_of_the_call(catalog: Catalog):
    peak = catalog.price("ds", "deepseek", "deepseek-chat", datetime(2026, 6, 1, 12, tzinfo=UTC))
    off = catalog.price("ds", "deepseek", "deepseek-chat", datetime(2026, 6, 1, 20, tzinfo=UTC))
    assert peak is not None and off is not None
    assert (peak.input, off.input) == (Decimal("0.27"), Decimal("0.135"))
