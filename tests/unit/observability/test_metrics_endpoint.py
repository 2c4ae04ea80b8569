"""``GET /metrics`` on an app in process: who may scrape it, the HTTP series of every route, and
label cardinality that 10,000 distinct model names and 10,000 bad paths do not grow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from modelyard.config.schema import Settings
from modelyard.server.app import create_app
from tests.fakes import FakeOpenAI

UPSTREAM_KEY = "sk-metrics-endpoint-0123456789"
SCRAPE_TOKEN = "scrape-token-0123456789abcdef"
OPERATOR_KEY = "my-operatorkey1-0123456789abcdef0123456789"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY) as server:
        yield server


def _settings(fake: FakeOpenAI, metrics: dict[str, Any], keys: bool = False) -> Settings:
    upstream = {"type": "openai", "base_url": fake.base_url, "api_key": UPSTREAM_KEY}
    return Settings.model_validate(
        {
            "local": {"enabled": False},
            "server": {"api_keys": ["sk-member-key-0123456789"] if keys else []},
            "providers": {"fake": upstream},
            "deployments": {"chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]}},
            "observability": {"metrics": {"enabled": True, **metrics}},
        }
    )


async def _client(app: Starlette, host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_loopback_scrapes_and_every_route_is_counted(fake: FakeOpenAI) -> None:
    app = create_app(_settings(fake, {}))
    async with app.router.lifespan_context(app), await _client(app) as client:
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        assert (await client.get("/v1/models")).status_code == 200
        scraped = await client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=")
    samples = _samples(scraped.text)
    chat = frozenset({("route", "/v1/chat/completions"), ("status_class", "2xx")})
    models = frozenset({("route", "/v1/models"), ("status_class", "2xx")})
    assert samples[("modelyard_http_requests_total", chat)] == 1
    assert samples[("modelyard_http_requests_total", models)] == 1
    assert samples[("modelyard_in_flight_requests", frozenset())] == 1  # the scrape itself
    assert samples[("modelyard_ledger_dropped_rows", frozenset())] == 0


async def test_from_elsewhere_a_scrape_needs_the_token_or_an_operator_key(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_ADMIN_KEY", OPERATOR_KEY)
    app = create_app(_settings(fake, {"token": SCRAPE_TOKEN}, keys=True))
    async with app.router.lifespan_context(app), await _client(app, "203.0.113.7") as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = {"authorization": "Bearer not-the-token-0123456789"}
        assert (await client.get("/metrics", headers=wrong)).status_code == 401
        member = {"authorization": "Bearer sk-member-key-0123456789"}
        assert (await client.get("/metrics", headers=member)).status_code == 403
        token = {"authorization": f"Bearer {SCRAPE_TOKEN}"}
        assert (await client.get("/metrics", headers=token)).status_code == 200
        operator = {"authorization": f"Bearer {OPERATOR_KEY}"}
        assert (await client.get("/metrics", headers=operator)).status_code == 200


async def test_open_metrics_need_nothing_and_metrics_off_is_a_404(fake: FakeOpenAI) -> None:
    app = create_app(_settings(fake, {"open": True}, keys=True))
    async with app.router.lifespan_context(app), await _client(app, "203.0.113.7") as client:
        assert (await client.get("/metrics")).status_code == 200
    settings = _settings(fake, {}).model_copy(update={"observability": Settings().observability})
    off = create_app(settings)
    async with off.router.lifespan_context(off), await _client(off) as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 404
    assert "observability.metrics.enabled" in answer.json()["error"]["message"]


@pytest.mark.slow  # 20,000 requests in process: about 20 s here
async def test_ten_thousand_model_names_and_bad_paths_add_no_series(fake: FakeOpenAI) -> None:
    app = create_app(_settings(fake, {}))
    async with app.router.lifespan_context(app), await _client(app) as client:

        async def flood(start: int, stop: int) -> int:
            for n in range(start, stop):
                body = {"model": f"model-{n}", "messages": [{"role": "user", "content": "x"}]}
                assert (await client.post("/v1/chat/completions", json=body)).status_code == 404
                assert (await client.get(f"/no/such/path/{n}")).status_code == 404
            return len(_samples((await client.get("/metrics")).text))

        await flood(0, 10)  # every kind of series exists (the scrape's own included)
        after_ten = await flood(10, 20)
        after_all = await flood(20, 10_000)
        text = (await client.get("/metrics")).text
    assert after_all == after_ten
    assert "model-9999" not in text and "/no/such/path" not in text
    samples = _samples(text)
    bad = frozenset({("route", "other"), ("status_class", "4xx")})
    assert samples[("modelyard_http_requests_total", bad)] == 10_000


async def test_routes_with_parameters_are_counted_by_their_template(fake: FakeOpenAI) -> None:
    app = create_app(_settings(fake, {}))
    async with app.router.lifespan_context(app), await _client(app) as client:
        for model in ("chat", "nope", "also-nope"):
            await client.get(f"/v1/models/{model}")
        samples = _samples((await client.get("/metrics")).text)
    found = {
        (dict(labels)["route"], dict(labels)["status_class"]): value
        for (name, labels), value in samples.items()
        if name == "modelyard_http_requests_total"
    }
    assert found[("/v1/models/{model:path}", "2xx")] == 1
    assert found[("/v1/models/{model:path}", "4xx")] == 2
