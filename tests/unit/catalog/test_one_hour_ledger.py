"""Through the real app, a SQLite ledger and a fake Anthropic upstream: a Messages call whose
cache breakpoint asks for a one-hour lifetime is billed for its writes at the one-hour rate
(the price data's, or the vendor's rule on a config price), whole and streamed; the client
sees the writes split in ``cache_creation``, and the ledger and its export carry the cost."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from modelyard.config.schema import Settings
from modelyard.server.app import create_app
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.migrated import MigratedSqlite
from tests.waiting import wait_until

ADMIN_KEY = "operator-secret-for-one-hour-cost-tests"
UPSTREAM_KEY = "sk-ant-upstream-one-hour"
MODEL = "claude-sonnet-4-0"
# genai-prices' list prices for it ($/Mtok): input 3, output 15, writes 3.75 (5 min), 6 (1 h).
LIST = {"input": 3, "output": 15, "5m": 3.75, "1h": 6}
# A negotiated config price without a one-hour rate: Claude's rule makes it 2 x input.
CONFIG = {"input": 2, "output": 10, "5m": 2.5, "1h": 4}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=UPSTREAM_KEY) as upstream:
        yield upstream


@pytest.fixture
def client(
    fake: FakeAnthropic,
    tmp_path: Path,
    migrated_sqlite: MigratedSqlite,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    monkeypatch.setenv("MODELYARD_ADMIN_KEY", ADMIN_KEY)
    for name in ("MODELYARD_REDIS_URL", "MODELYARD_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    provider = {"type": "anthropic", "base_url": fake.base_url, "api_key": UPSTREAM_KEY}
    negotiated = {"input": CONFIG["input"], "output": CONFIG["output"], "cache_write": 2.5}
    settings = Settings.model_validate(
        {
            "local": {"enabled": False},
            "providers": {"an": provider, "deal": provider},
            "deployments": {
                "claude": {"targets": [{"provider": "an", "model": MODEL}]},
                "claude-deal": {"targets": [{"provider": "deal", "model": MODEL}]},
            },
            "prices": {f"deal/{MODEL}": negotiated},
        }
    )
    url = migrated_sqlite.url(tmp_path / "store.db")
    with TestClient(create_app(settings, store_url=url)) as test_client:
        yield test_client


def _ask(
    client: TestClient, deployment: str, words: str, ttl: str | None, stream: bool
) -> tuple[dict[str, Any], str]:
    """The answer's usage as the client sees it, and the request's id."""
    mark: dict[str, Any] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    body = {
        "model": deployment,
        "max_tokens": 64,
        "system": [{"type": "text", "text": words, "cache_control": mark}],
        "messages": [{"role": "user", "content": "hello there"}],
        "stream": stream,
    }
    headers = {"authorization": f"Bearer {ADMIN_KEY}", "anthropic-version": "2023-06-01"}
    reply = client.post("/v1/messages", json=body, headers=headers)
    assert reply.status_code == 200, reply.text
    rid = reply.headers["x-request-id"]
    if not stream:
        usage: dict[str, Any] = reply.json()["usage"]
        assert int(reply.headers["x-modelyard-cost-micros"]) == _priced_row(usage, deployment)
        return usage, rid
    deltas = [
        orjson.loads(line[6:])
        for line in reply.text.splitlines()
        if line.startswith("data: ") and '"message_delta"' in line
    ]
    return deltas[-1]["usage"], rid


def _priced_row(usage: dict[str, Any], deployment: str) -> int:
    return _priced(usage, LIST if deployment == "claude" else CONFIG)


def _priced(usage: dict[str, Any], rates: dict[str, float]) -> int:
    """The bill by hand: tokens x dollars per million tokens are micro-dollars."""
    split = usage["cache_creation"]
    exact = (
        usage["input_tokens"] * rates["input"]
        + split["ephemeral_5m_input_tokens"] * rates["5m"]
        + split["ephemeral_1h_input_tokens"] * rates["1h"]
        + usage["output_tokens"] * rates["output"]
    )
    return int(exact + 0.5)


def _ledger(client: TestClient) -> list[dict[str, str]]:
    reply = client.get("/admin/v1/usage.csv", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert reply.status_code == 200, reply.text
    rows = list(csv.reader(io.StringIO(reply.text)))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    ("deployment", "rates"), [("claude", LIST), ("claude-deal", CONFIG)], ids=["list", "config"]
)
def test_one_hour_writes_are_billed_at_the_one_hour_rate(
    client: TestClient, deployment: str, rates: dict[str, float], stream: bool
) -> None:
    # Each prompt is new to the fake's cache, so the whole system block is written.
    prefix = f"{deployment} {'streamed' if stream else 'whole'} one two three four five six"
    hour, hour_id = _ask(client, deployment, f"hour {prefix}", "1h", stream)
    five, five_id = _ask(client, deployment, f"five {prefix}", None, stream)
    written = hour["cache_creation_input_tokens"]
    assert written > 0 and five["cache_creation_input_tokens"] == written
    assert hour["cache_creation"] == {
        "ephemeral_5m_input_tokens": 0,
        "ephemeral_1h_input_tokens": written,
    }
    assert five["cache_creation"] == {
        "ephemeral_5m_input_tokens": written,
        "ephemeral_1h_input_tokens": 0,
    }

    def recorded() -> dict[str, dict[str, str]] | None:
        rows = {r["request_id"]: r for r in _ledger(client)}
        return rows if {hour_id, five_id} <= set(rows) else None

    rows = wait_until(recorded, "both calls in the ledger")
    hour_cost, five_cost = (int(rows[i]["cost_micros"]) for i in (hour_id, five_id))
    assert (hour_cost, five_cost) == (_priced(hour, rates), _priced(five, rates))
    # Same tokens, the hour's writes at their rate: the difference is the premium (each bill
    # rounded once to the micro-dollar).
    premium = written * (rates["1h"] - rates["5m"])
    assert premium > 0 and abs(hour_cost - five_cost - premium) <= 1
    assert int(rows[hour_id]["cache_write_tokens"]) == written
    assert Decimal(rows[hour_id]["cost_usd"]) == Decimal(hour_cost) / 1_000_000
