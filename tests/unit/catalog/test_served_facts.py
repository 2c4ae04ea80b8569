"""The catalog as the server uses it: /v1/models facts, capability refusals, cost routing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from starlette.testclient import TestClient

from modelyard.config.schema import Settings
from modelyard.routing import Target
from modelyard.server.app import create_app
from modelyard.services.gateway import Gateway

# Never reached: every request here is answered (or refused) before any upstream call.
NOWHERE = "http://127.0.0.1:9/v1"


def _settings() -> Settings:
    return Settings.model_validate(
        {
            "local": {"enabled": False},
            "providers": {
                "ds": {"type": "deepseek", "api_key": "k", "base_url": NOWHERE},
                "oa": {"type": "openai", "api_key": "k", "base_url": NOWHERE},
                "anon": {"type": "openai_compatible", "base_url": NOWHERE},
            },
            "deployments": {
                "text-only": {"targets": [{"provider": "ds", "model": "deepseek-chat"}]},
                "mixed": {
                    "strategy": "cost",
                    "targets": [
                        {"provider": "oa", "model": "gpt-4o"},
                        {"provider": "ds", "model": "deepseek-chat"},
                        {"provider": "anon", "model": "mystery"},
                    ],
                },
            },
            "prices": {"oa/gpt-4o": {"input": 2, "output": 8, "cached_input": 0.5}},
        }
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(_settings())) as test_client:
        yield test_client


def _targets(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["provider"]: t for t in entry["modelyard"]["targets"]}


def test_models_carry_catalog_facts_in_a_namespaced_field(client: TestClient):
    listed = client.get("/v1/models").json()["data"]
    entry = next(e for e in listed if e["id"] == "mixed")
    assert {k: entry[k] for k in ("object", "owned_by")} == {
        "object": "model",
        "owned_by": "modelyard",
    }
    assert entry["modelyard"]["deployment"] == "mixed"
    targets = _targets(entry)
    ds = targets["ds"]
    assert ds["vendor"] == "deepseek"
    assert ds["input_modalities"] == ["text"]
    assert ds["capabilities"] == {
        "tools": True,
        "images": False,
        "json_schema": False,
        "reasoning": False,
    }
    assert ds["prices"]["source"] == "catalog"
    oa = targets["oa"]
    assert (oa["context_window"], oa["max_output"]) == (128000, 16384)
    assert oa["prices"] == {"source": "config", "input": "2", "output": "8", "cached_input": "0.5"}
    unknown = targets["anon"]
    assert unknown["vendor"] is None and unknown["prices"] is None
    assert set(unknown["capabilities"].values()) == {None}
    single = client.get("/v1/models/text-only").json()
    assert single["id"] == "text-only"
    assert _targets(single)["ds"]["capabilities"]["images"] is False


def test_the_openai_sdk_still_parses_the_model_list(client: TestClient):
    sdk = openai.OpenAI(api_key="unused", base_url="http://testserver/v1", http_client=client)
    models = sdk.models.list()
    ids = [m.id for m in models.data]
    assert ids == sorted(["mixed", "text-only"])
    one = sdk.models.retrieve("text-only")
    assert one.owned_by == "modelyard"
    extra = one.model_extra or {}
    assert extra["modelyard"]["targets"][0]["model"] == "deepseek-chat"


def test_an_image_to_a_text_only_catalog_model_is_a_400_naming_the_capability(
    client: TestClient,
):
    body = {
        "model": "text-only",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                ],
            }
        ],
    }
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "image input" in error["message"]
    assert error["code"] == "unsupported_capability" and error["param"] == "messages"
    # The Messages API has no ``param``: its message names the field first.
    anthropic_body = {
        "model": "text-only",
        "max_tokens": 50,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": "iVBORw0K"}},
                ],
            }
        ],
    }  # fmt: skip
    refused = client.post("/v1/messages", json=anthropic_body)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("messages: model 'text-only'")
    # The same text without the image passes the check (and fails later, upstream).
    text_only = {"model": "text-only", "messages": [{"role": "user", "content": "hi"}]}
    assert client.post("/v1/chat/completions", json=text_only).status_code != 400


async def test_cost_routing_uses_catalog_prices_and_overrides():
    gateway = Gateway(_settings(), None)
    try:
        targets = {t.provider: t for t in gateway.table.resolve("mixed").targets}
        assert gateway.price_of(targets["oa"]) == 2 + 8  # the config's override
        assert gateway.price_of(targets["ds"]) in (0.27 + 1.1, 0.135 + 0.55)  # peak/off-peak
        assert gateway.price_of(targets["anon"]) is None
        assert gateway.price_of(Target("no-such-provider", "x")) is None
    finally:
        await gateway.aclose()
