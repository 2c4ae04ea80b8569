"""Keys, limits, budgets and the ledger across two gateway replicas sharing a real PostgreSQL and
a real Redis, both started by the test suite."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
import redis

from modelyard.services.tenancy import KeySpec, TenancyAdmin
from modelyard.store import open_store
from modelyard.store.usage import UsageLedger, UsageRecord
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.model import Limits, UsageFilter
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server
from tests.redis_server import running_redis
from tests.unit.store.postgres import running_postgres
from tests.waiting import wait_until

OPERATOR = Principal("test-operator", role="operator")
RPM = 20
# 0.1 dollar per token: "hi" costs 1 input + 2 output tokens = 0.3 dollars on the fake.
PRICE_PER_M = 100_000
BUDGET_MICROS = 1_000_000
USER = [{"role": "user", "content": "hi"}]


@dataclass
class Cluster:
    servers: list[RunningServer]
    db_url: str
    redis_url: str
    keys: dict[str, str]
    key_ids: dict[str, str]


async def _seed(db_url: str) -> tuple[dict[str, str], dict[str, str]]:
    store = await open_store(db_url)
    admin = TenancyAdmin(store)
    try:
        await admin.create_project(OPERATOR, "team-a", None, Limits())
        specs = {
            "limited": KeySpec("team-a", limits=Limits(rpm=RPM)),
            "metered": KeySpec("team-a"),
            "budgeted": KeySpec("team-a", limits=Limits(daily_budget_micros=BUDGET_MICROS)),
            "scoped": KeySpec("team-a", deployments=("chat",)),
            "doomed": KeySpec("team-a"),
            "once": KeySpec("team-a", limits=Limits(rpm=1)),  # one request a minute
        }
        keys, ids = {}, {}
        for name, spec in specs.items():
            stored, fresh = await admin.create_key(OPERATOR, spec)
            keys[name], ids[name] = fresh.secret, stored.id
        return keys, ids
    finally:
        await store.aclose()


def _config(fake: FakeOpenAI) -> dict[str, object]:
    target = {"provider": "fake", "model": "gpt-4o-mini"}
    return {
        "local": {"enabled": False},
        "providers": {
            "fake": {"type": "openai_compatible", "base_url": fake.base_url, "api_key": "env::K"}
        },
        "prices": {"fake/gpt-4o-mini": {"input": PRICE_PER_M, "output": PRICE_PER_M}},
        "deployments": {
            "chat": {"targets": [target]},
            "other": {"targets": [target]},
            "broken": {"targets": [{"provider": "fake", "model": "fail-400"}]},
            "embed": {"targets": [{"provider": "fake", "model": "text-embedding-3-small"}]},
        },
    }


@pytest.fixture(scope="module")
def cluster(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    with running_postgres() as db_url, running_redis() as redis:
        keys, ids = asyncio.run(_seed(db_url))
        env = {
            "K": UPSTREAM_KEY,
            "MODELYARD_DATABASE_URL": db_url,
            "MODELYARD_REDIS_URL": redis.url,
        }
        config = _config(fake_upstream)
        a: Path = tmp_path_factory.mktemp("replica-a")
        b: Path = tmp_path_factory.mktemp("replica-b")
        with run_server(a, config, env=env) as one, run_server(b, config, env=env) as two:
            yield Cluster([one, two], db_url, redis.url, keys, ids)


def _post(
    server: RunningServer, key: str | None, model: str = "chat", **body: object
) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(
        f"{server.base_url}/chat/completions",
        json={"model": model, "messages": USER, **body},
        headers=headers,
        timeout=30,
    )


async def _ledger(db_url: str, key_id: str) -> list[UsageRecord]:
    store = await open_store(db_url)
    try:
        async with store.transaction() as session:
            return await UsageLedger(session).records(UsageFilter(key_id=key_id))
    finally:
        await store.aclose()


def _wait_for_ledger(cluster: Cluster, key: str, count: int) -> list[UsageRecord]:
    def enough() -> list[UsageRecord] | None:
        records = asyncio.run(_ledger(cluster.db_url, cluster.key_ids[key]))
        return records if len(records) >= count else None

    return wait_until(enough, f"{count} ledger records of key {key!r}")


def _redis_ms(cluster: Cluster) -> int:
    """The clock the replicas' limits follow: the Redis server's."""
    with redis.Redis.from_url(cluster.redis_url) as client:
        seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_once_keys_exist_every_request_needs_one(cluster: Cluster):
    missing = _post(cluster.servers[0], None)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    assert _post(cluster.servers[1], "my-aaaaaaaaaaaa-" + "x" * 43).status_code == 401


def test_two_replicas_enforce_one_rpm_limit_exactly(cluster: Cluster):
    key = cluster.keys["limited"]
    started_ms = _redis_ms(cluster)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda i: _post(cluster.servers[i % 2], key), range(3 * RPM)))
    redis_ms_taken = _redis_ms(cluster) - started_ms
    admitted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(admitted) + len(refused) == 3 * RPM
    # The bucket refills RPM/60 requests per second (of Redis's clock) while the burst runs.
    allowance = (redis_ms_taken + 1) * RPM // 60_000
    assert RPM <= len(admitted) <= RPM + allowance, (len(admitted), redis_ms_taken)
    # Both replicas admitted some: the limit is shared, not per process.
    assert {r.url.port for r in admitted} == {httpx.URL(s.url).port for s in cluster.servers}
    refusal = refused[0]
    assert int(refusal.headers["retry-after"]) >= 1
    assert refusal.headers["x-ratelimit-limit-requests"] == str(RPM)
    assert refusal.headers["x-ratelimit-remaining-requests"] == "0"
    assert refusal.json()["error"]["code"] == "rate_limit_exceeded"
    assert admitted[0].headers["x-ratelimit-limit-requests"] == str(RPM)


def test_the_anthropic_endpoint_refuses_in_its_own_shape(cluster: Cluster):
    """A key of its own, spent here: not the bucket another test emptied, which refills a
    request every 3 s (a loaded machine got a 200 that way). Asked until refused, so that a
    refill between two calls would mean one more call, not a failure."""

    def refusal() -> httpx.Response | None:
        reply = httpx.post(
            f"{cluster.servers[0].base_url}/messages",
            json={"model": "chat", "max_tokens": 10, "messages": USER},
            headers={"x-api-key": cluster.keys["once"], "anthropic-version": "2023-06-01"},
            timeout=30,
        )
        if reply.status_code == 429:
            return reply
        assert reply.status_code == 200, reply.text
        return None

    refused = wait_until(refusal, "the key's request of the minute spent, then refused")
    body = refused.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "retry-after" in refused.headers


def test_the_ledger_holds_exactly_one_record_per_request(cluster: Cluster):
    key = cluster.keys["metered"]
    sent: list[str] = []
    for i in range(12):
        server = cluster.servers[i % 2]
        if i % 3 == 0:
            reply = _post(server, key, stream=True)
        elif i % 3 == 1:
            reply = _post(server, key, model="broken")
        else:
            reply = _post(server, key)
            assert reply.headers["x-modelyard-cost-micros"] == "300000"
        sent.append(reply.headers["x-request-id"])
    embedded = httpx.post(
        f"{cluster.servers[1].base_url}/embeddings",
        json={"model": "embed", "input": ["one two three", "four"]},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert embedded.status_code == 200
    sent.append(embedded.headers["x-request-id"])
    # One last request per replica: each replica's writer keeps its queue's order, so once these
    # are written, so is every record (or duplicate) the requests above queued before them.
    last = [_post(server, key).headers["x-request-id"] for server in cluster.servers]
    expected = set(sent) | set(last)

    def all_written() -> list[UsageRecord] | None:
        found = asyncio.run(_ledger(cluster.db_url, cluster.key_ids["metered"]))
        return found if expected <= {r.request_id for r in found} else None

    records = wait_until(all_written, "every request's ledger record")
    records = [r for r in records if r.request_id not in last]
    assert sorted(r.request_id for r in records) == sorted(sent)
    by_id = {r.request_id: r for r in records}
    ok = by_id[sent[2]]
    assert (ok.status, ok.project_id, ok.deployment, ok.model) == (
        200,
        "team-a",
        "chat",
        "gpt-4o-mini",
    )
    assert (ok.input_tokens, ok.output_tokens, ok.usage_reported) == (1, 2, True)
    assert ok.cost_micros == 300_000
    streamed = by_id[sent[0]]
    assert streamed.stream and streamed.status == 200 and streamed.ttft_ms is not None
    assert streamed.cost_micros == 300_000
    assert by_id[sent[1]].status == 400 and by_id[sent[1]].cost_micros == 0
    embedding = by_id[sent[-1]]
    assert (embedding.endpoint, embedding.deployment, embedding.status) == (
        "/v1/embeddings",
        "embed",
        200,
    )
    assert embedding.input_tokens == embedded.json()["usage"]["prompt_tokens"] > 0


def test_a_budget_stops_spending_at_the_budget(cluster: Cluster):
    key = cluster.keys["budgeted"]
    statuses = [_post(cluster.servers[i % 2], key).status_code for i in range(8)]
    # 0.3 dollars a request against 1 dollar: the 4th crosses it, then every request is refused.
    assert statuses == [200] * 4 + [402] * 4
    refused = _post(cluster.servers[0], key)
    assert refused.json()["error"]["code"] == "insufficient_quota"
    records = _wait_for_ledger(cluster, "budgeted", 4)  # the admitted four; refusals cost 0
    spent = sum(r.cost_micros or 0 for r in records)
    assert BUDGET_MICROS <= spent <= BUDGET_MICROS + 300_000


def test_a_key_scoped_to_deployments_gets_403_elsewhere(cluster: Cluster):
    key = cluster.keys["scoped"]
    assert _post(cluster.servers[0], key).status_code == 200
    refused = _post(cluster.servers[0], key, model="other")
    assert refused.status_code == 403
    assert "may not call deployment 'other'" in refused.json()["error"]["message"]


def test_a_revoked_key_stops_working_on_every_replica(cluster: Cluster):
    key = cluster.keys["doomed"]
    assert all(_post(s, key).status_code == 200 for s in cluster.servers)

    async def revoke() -> None:
        store = await open_store(cluster.db_url)
        try:
            await TenancyAdmin(store).revoke_key(OPERATOR, cluster.key_ids["doomed"])
        finally:
            await store.aclose()

    asyncio.run(revoke())
    # Each replica's key refresher sees the store's generation move at its next poll (every
    # 0.5 s; tests/unit/tenancy/test_key_refresher.py fires the polls by hand).
    for server in cluster.servers:

        def refused(server: RunningServer = server) -> bool:
            return _post(server, key).status_code == 401

        wait_until(refused, f"the revoked key refused by {server.url}")


async def _create_limited(db_url: str) -> tuple[str, str]:
    """What ``modelyard keys create --project team-a --rpm 3`` does: a write on the store."""
    store = await open_store(db_url)
    try:
        stored, fresh = await TenancyAdmin(store).create_key(
            OPERATOR, KeySpec("team-a", limits=Limits(rpm=3))
        )
        return stored.id, fresh.secret
    finally:
        await store.aclose()


def test_a_key_made_a_moment_ago_is_limited_and_counted_on_every_replica(cluster: Cluster):
    """Issue 17 #14: used at once, on both replicas before their next poll, the key is served
    with its limit (3 a minute across both) and every answer is in the ledger under it."""
    key_id, secret = asyncio.run(_create_limited(cluster.db_url))
    statuses = [_post(cluster.servers[i % 2], secret).status_code for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    cluster.key_ids["fresh"] = key_id
    records = _wait_for_ledger(cluster, "fresh", 3)
    assert sorted(r.status for r in records if r.status == 200) == [200, 200, 200]
