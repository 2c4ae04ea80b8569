"""A client that goes away mid-stream cancels the upstream request: no orphaned generation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from modelyard.services.tenancy import KeySpec, TenancyAdmin
from modelyard.store import open_store
from modelyard.store.usage import UsageLedger
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.model import Limits, UsageFilter
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server
from tests.redis_server import running_redis
from tests.waiting import DEADLINE_S, wait_until

MODEL = "endless-stream"
GO = [{"role": "user", "content": "go"}]


def _chunk(text: str) -> bytes:
    body = {
        "id": "chatcmpl-x",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


def test_client_disconnect_cancels_the_upstream(gateway: RunningServer, fake_upstream: FakeOpenAI):
    sent = {"chunks": 0}
    cancelled = threading.Event()

    async def handler(request: Request, body: dict[str, Any]) -> Response:
        async def frames() -> AsyncIterator[bytes]:
            try:
                while True:  # would stream forever if nobody stopped it
                    sent["chunks"] += 1
                    yield _chunk("tick ")
                    await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        return StreamingResponse(frames(), media_type="text/event-stream")

    fake_upstream.script(MODEL, handler)
    # The "endless" deployment targets the scripted model on the fake upstream.
    payload = {"model": "endless", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    try:
        with httpx.stream(
            "POST", f"{gateway.base_url}/chat/completions", json=payload, timeout=10
        ) as resp:
            assert resp.status_code == 200
            for line in resp.iter_lines():
                if line.startswith("data: ") and "tick" in line:
                    break
        # The client is gone; the gateway must close its upstream stream promptly.
        # Cancelled, the endless generator has ended: no chunk can follow.
        assert cancelled.wait(DEADLINE_S), "the upstream kept streaming after the client left"
    finally:
        fake_upstream.unscript(MODEL)


STREAM_TOKENS = 3_000  # each dropped stream reserves about this many tokens
TPM = 20_000  # six unsettled reservations would leave too few for the last call's 15,000


async def _seed_key(data: Path) -> str:
    data.mkdir(parents=True, exist_ok=True)
    store = await open_store(f"sqlite+aiosqlite:///{data / 'modelyard.db'}")
    try:
        admin = TenancyAdmin(store)
        operator = Principal("test-operator", role="operator")
        await admin.create_project(operator, "team", None, Limits())
        _, fresh = await admin.create_key(operator, KeySpec("team", limits=Limits(tpm=TPM)))
        return fresh.secret
    finally:
        await store.aclose()


async def _ledger_statuses(data: Path) -> list[int]:
    store = await open_store(f"sqlite+aiosqlite:///{data / 'modelyard.db'}")
    try:
        async with store.transaction() as session:
            records = await UsageLedger(session).records(UsageFilter())
        return sorted(r.status for r in records)
    finally:
        await store.aclose()


def test_clients_gone_mid_stream_with_limits_in_redis_leak_nothing(
    fake_upstream: FakeOpenAI, tmp_path: Path
):
    """Issue 17 #1: six clients leave after the first chunk while limits live in Redis; their
    in-flight slots, reservations and ledger rows must all come back, or the next call is a
    429 (the bound of 4, or the key's TPM)."""
    key = asyncio.run(_seed_key(tmp_path / "data"))
    upstream = {"type": "openai_compatible", "base_url": fake_upstream.base_url}
    config = {
        "server": {"max_in_flight": 4},
        "local": {"enabled": False},
        "providers": {"fake": {**upstream, "api_key": "env::K"}},
        "deployments": {
            "chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]},
            "trickle": {"targets": [{"provider": "fake", "model": "trickle-2000"}]},
        },
    }
    headers = {"authorization": f"Bearer {key}"}
    with (
        running_redis() as redis,
        run_server(
            tmp_path, config, env={"K": UPSTREAM_KEY, "MODELYARD_REDIS_URL": redis.url}
        ) as server,
    ):
        body = {"model": "trickle", "stream": True, "max_tokens": STREAM_TOKENS, "messages": GO}
        for _ in range(6):
            with httpx.stream(
                "POST", f"{server.base_url}/chat/completions", json=body, headers=headers
            ) as resp:
                assert resp.status_code == 200
                for line in resp.iter_lines():
                    if line.startswith("data: "):
                        break  # the client leaves after the first chunk
        last = {"model": "chat", "max_tokens": 15_000, "messages": GO}
        answer = httpx.post(
            f"{server.base_url}/chat/completions", json=last, headers=headers, timeout=30
        )
        assert answer.status_code == 200, answer.text
        wanted = [200] + [499] * 6
        wait_until(
            lambda: asyncio.run(_ledger_statuses(tmp_path / "data")) == wanted,
            "one 200 and six 499 rows in the ledger",
        )
