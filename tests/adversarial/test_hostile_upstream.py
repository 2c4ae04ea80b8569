"""A hostile upstream against a real server, through the official SDKs (issue 17).

Every fault of ``tests.fakes.hostile`` (unreadable usage, invalid UTF-8 early and late, resets,
partial streams, non-JSON, hung upstreams, error texts quoting our request headers), in
OpenAI's and Anthropic's wire formats, reached through both served dialects, streamed and
not. After the run the invariants are checked on the real process: every admitted request
has exactly one ledger row, no in-flight slot leaked, and neither the provider's key nor its
auth header value appears in any answer or any line of the server's log (at debug level)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam

from modelyard.services.tenancy import KeySpec, TenancyAdmin
from modelyard.store import open_store
from modelyard.store.usage import UsageLedger
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.model import Limits, UsageFilter
from tests.fakes.hostile import Hostile
from tests.integration.server import RunningServer, run_server
from tests.waiting import wait_until

API_KEY = "plainpassword42zebra"  # shaped like no key: only knowing it keeps it out
HEADER_SECRET = "unicorn-hay-7781-meadow"
SECRETS = [API_KEY, HEADER_SECRET]
# Faults another target can make up for (before the first event, retryable).
EARLY = ["bad-usage", "bad-utf8", "reset", "garbage", "echo-500", "echo-429", "echo-402"]
# Faults the client sees: after the first event, or not retryable (the client's input).
LATE = ["late-utf8", "partial", "stall", "bad-usage", "echo-stream", "echo-400", "echo-401"]
# Faults that fall silent: only a short timeout ends them (first_token is also the silence
# limit). On these targets alone: a healthy target with it would fail on a loaded machine.
SILENT = ("hang", "stall")
SHORT = {"first_token": 1.0, "total": 5.0}
WIRES = ["openai", "anthropic"]
MAX_IN_FLIGHT = 4
USER: list[dict[str, str]] = [{"role": "user", "content": "hi"}]
OPENAI_USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
ANTHROPIC_USER: list[MessageParam] = [{"role": "user", "content": "hi"}]


def _config(hostile: Hostile) -> dict[str, Any]:
    auth = {"api_key": "env::UP_KEY", "headers": {"x-custom-auth": HEADER_SECRET}}
    providers = {
        "openai": {"type": "openai_compatible", "base_url": hostile.base_url, **auth},
        "anthropic": {"type": "anthropic", "base_url": hostile.url, **auth},
    }
    deployments: dict[str, Any] = {}
    for wire in WIRES:
        for fault in EARLY:  # the faulty target first, then a healthy one: failover
            targets = [{"provider": wire, "model": fault}, {"provider": wire, "model": "ok"}]
            deployments[f"{wire}-{fault}"] = {"targets": targets}
        for fault in [*LATE, "hang"]:  # alone: the client sees the failure
            target: dict[str, Any] = {"provider": wire, "model": fault}
            if fault in SILENT:
                target["timeouts"] = SHORT
            deployments[f"solo-{wire}-{fault}"] = {"targets": [target], "retry": {"attempts": 1}}
    # For clients that leave after the first chunk: no timeout can end it before they do.
    deployments["left-stall"] = {"targets": [{"provider": "anthropic", "model": "stall"}]}
    return {
        "server": {"max_in_flight": MAX_IN_FLIGHT},
        "local": {"enabled": False},
        "providers": providers,
        "deployments": deployments,
    }


async def _seed_key(data: Path) -> str:
    data.mkdir(parents=True, exist_ok=True)
    store = await open_store(f"sqlite+aiosqlite:///{data / 'modelyard.db'}")
    try:
        admin = TenancyAdmin(store)
        operator = Principal("test-operator", role="operator")
        await admin.create_project(operator, "team", None, Limits(rpm=100_000))
        _, fresh = await admin.create_key(operator, KeySpec("team", limits=Limits(rpm=100_000)))
        return fresh.secret
    finally:
        await store.aclose()


async def _ledger_ids(data: Path) -> list[str]:
    store = await open_store(f"sqlite+aiosqlite:///{data / 'modelyard.db'}")
    try:
        async with store.transaction() as session:
            records = await UsageLedger(session).records(UsageFilter(), limit=10_000)
        return sorted(r.request_id for r in records)
    finally:
        await store.aclose()


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    with Hostile() as server:
        yield server


@pytest.fixture(scope="module")
def served(hostile: Hostile, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("hostile")
    key = asyncio.run(_seed_key(tmp / "data"))
    env = {"UP_KEY": API_KEY}
    with run_server(tmp, _config(hostile), env=env, extra_args=("--log-level", "debug")) as server:
        yield server, key, tmp / "data"


class Seen:
    """Every answer's text and request id, for the checks after the run."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.ids: list[str] = []

    def note(self, text: str, rid: str | None) -> None:
        self.texts.append(text)
        if rid:
            self.ids.append(rid)


def _openai_call(server: RunningServer, key: str, seen: Seen) -> Callable[[str, bool], str]:
    client = openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=30)

    def call(model: str, stream: bool) -> str:
        if not stream:
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=OPENAI_USER
            )
            seen.note(raw.http_response.text, raw.headers.get("x-request-id"))
            return raw.parse().choices[0].message.content or ""
        with client.chat.completions.with_streaming_response.create(
            model=model, messages=OPENAI_USER, stream=True
        ) as response:
            seen.ids.append(response.headers["x-request-id"])
            text = "".join(response.iter_text())
            seen.texts.append(text)
            if '"error"' in text:
                raise openai.APIError("in-stream error", httpx.Request("POST", "/"), body=None)
            return text

    return call


def _anthropic_call(server: RunningServer, key: str, seen: Seen) -> Callable[[str, bool], str]:
    client = anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0, timeout=30)

    def call(model: str, stream: bool) -> str:
        if not stream:
            raw = client.messages.with_raw_response.create(
                model=model, max_tokens=16, messages=ANTHROPIC_USER
            )
            seen.note(raw.http_response.text, raw.headers.get("x-request-id"))
            block = raw.parse().content[0]
            return block.text if block.type == "text" else ""
        with client.messages.with_streaming_response.create(
            model=model, max_tokens=16, messages=ANTHROPIC_USER, stream=True
        ) as response:
            seen.ids.append(response.headers["x-request-id"])
            text = "".join(response.iter_text())
            seen.texts.append(text)
            if "event: error" in text:
                raise anthropic.APIError("in-stream error", httpx.Request("POST", "/"), body=None)
            return text

    return call


def _failed_text(exc: Exception) -> str:
    return f"{exc} {getattr(exc, 'body', '')}"


def test_a_hostile_upstream_breaks_no_invariant(served: Any, hostile: Hostile) -> None:
    server, key, data = served
    seen = Seen()
    calls = {
        "openai": _openai_call(server, key, seen),
        "anthropic": _anthropic_call(server, key, seen),
    }
    for dialect, call in calls.items():
        for wire in WIRES:
            for fault in EARLY:
                # A stream's usage comes after its first event: that fault is a late one.
                for stream in (False, True) if fault != "bad-usage" else (False,):
                    answer = call(f"{wire}-{fault}", stream)
                    assert "hel" in answer, (dialect, wire, fault, stream, answer)
            for fault in LATE:
                for stream in (False, True):
                    try:
                        call(f"solo-{wire}-{fault}", stream)
                    except (openai.APIError, anthropic.APIError) as exc:
                        seen.texts.append(_failed_text(exc))
                        ids = getattr(getattr(exc, "response", None), "headers", {})
                        if ids and "x-request-id" in ids:  # refused before any byte
                            seen.ids.append(ids["x-request-id"])
    assert all(hostile.hits[f] > 0 for f in [*EARLY, *LATE])
    left = _leave_mid_stream(server, key, seen, 2 * MAX_IN_FLIGHT)
    server.wait_finished(left)  # the server noticed each leaving in its own time
    _check_in_flight_is_free(server, key)
    _check_nothing_secret(server, seen)
    # One ledger row per admitted request (and the in-flight check's), each id once.
    wanted = sorted(seen.ids)
    made = 2 * 2 * (2 * len(EARLY) - 1 + 2 * len(LATE)) + 2 * MAX_IN_FLIGHT
    assert len(set(wanted)) == len(wanted) == made

    def all_rows() -> list[str] | None:
        ids = asyncio.run(_ledger_ids(data))
        return ids if len(ids) >= len(wanted) + MAX_IN_FLIGHT else None

    rows = wait_until(all_rows, "the ledger rows of the run")
    assert len(rows) == len(set(rows)) == len(wanted) + MAX_IN_FLIGHT
    assert set(wanted) <= set(rows)


def _check_in_flight_is_free(server: RunningServer, key: str) -> None:
    """All ``MAX_IN_FLIGHT`` slots are free: that many hung requests are all admitted (each
    ends with the upstream's first-token timeout, a 504), none refused with a 429."""
    body = {"model": "solo-openai-hang", "messages": USER}
    headers = {"authorization": f"Bearer {key}"}

    def post(_: int) -> int:
        url = f"{server.base_url}/chat/completions"
        return httpx.post(url, json=body, headers=headers, timeout=60).status_code

    with concurrent.futures.ThreadPoolExecutor(MAX_IN_FLIGHT) as pool:
        statuses = list(pool.map(post, range(MAX_IN_FLIGHT)))
    assert statuses == [504] * MAX_IN_FLIGHT


def _check_nothing_secret(server: RunningServer, seen: Seen) -> None:
    joined = "\n".join(seen.texts)
    assert "received these headers" in joined  # the echoing faults were relayed
    log = server.log()
    for secret in SECRETS:
        half = secret[: len(secret) // 2]
        assert half not in joined, f"a secret reached a client: {secret}"
        assert half not in log, f"a secret reached the log: {secret}"


def _leave_mid_stream(server: RunningServer, key: str, seen: Seen, times: int) -> list[str]:
    """Clients that leave after the first chunk of a stream the upstream keeps open: each
    must give its in-flight slot back (checked next) and leave one ledger row. Their ids."""
    body = {"model": "left-stall", "stream": True, "messages": USER}
    headers = {"authorization": f"Bearer {key}"}
    left = []
    for _ in range(times):
        url = f"{server.base_url}/chat/completions"
        with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as response:
            assert response.status_code == 200
            seen.ids.append(response.headers["x-request-id"])
            left.append(response.headers["x-request-id"])
            for line in response.iter_lines():
                if line.startswith("data: "):
                    break  # the client leaves
    return left
