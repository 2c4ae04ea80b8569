"""Background responses whose MCP tools the gateway runs, through the official ``openai`` SDK
on a real server, with the real MCP calculator (``tests/fakes/mcp_calc.py``; its ``hold`` tool
waits until the test releases it): queued → the loop's items, polled and replayed from a
sequence number; an approval request ends the run ``completed``; cancel mid-call stops the loop
(no further model round, the ledger rows those of what ran); a killed gateway's run is failed
by the next."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.responses import ResponseCompletedEvent

from modelyard.services.background import RESTARTED
from modelyard.store import database_url, open_store
from modelyard.store.usage import UsageLedger
from modelyard.tenancy.model import UsageFilter
from tests.fakes.mcp_calc import CalcServer, serve_calc
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.responses_spec import spec_errors
from tests.integration.server import RunningServer, free_port, run_server
from tests.waiting import DEADLINE_S, wait_until

TOKEN = "calc-token-bg-7713"
ENV = {"K": UPSTREAM_KEY, "CALC_AUTH": f"Bearer {TOKEN}"}
ADD: Any = {
    "type": "mcp",
    "server_label": "calc",
    "require_approval": "never",
    "allowed_tools": ["add"],
}
HOLD: Any = {**ADD, "allowed_tools": ["hold"]}


@pytest.fixture(scope="module")
def calc() -> Iterator[CalcServer]:
    with serve_calc(token=TOKEN, hold=True) as server:
        yield server


def _config(calc: CalcServer, fake_upstream: Any) -> dict[str, Any]:
    return {
        "local": {"enabled": False},
        "providers": {
            "oa": {
                "type": "openai_compatible",
                "base_url": fake_upstream.base_url,
                "api_key": "env::K",
            },
        },
        "deployments": {"oa": {"targets": [{"provider": "oa", "model": "model-x"}]}},
        "mcp_servers": {
            "calc": {"url": calc.url, "headers": {"Authorization": "env::CALC_AUTH"}},
            "dead": {"url": f"http://127.0.0.1:{free_port()}/mcp"},
        },
    }


@pytest.fixture(scope="module")
def gw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mcp-background")


@pytest.fixture(scope="module")
def gw(calc: CalcServer, fake_upstream: Any, gw_dir: Path) -> Iterator[RunningServer]:
    with run_server(gw_dir, _config(calc, fake_upstream), env=ENV) as server:
        yield server


def _client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)


def _final(client: openai.OpenAI, response_id: str) -> Any:
    wait_until(
        lambda: client.responses.retrieve(response_id).status not in ("queued", "in_progress"),
        "the background response to end",
    )
    raw = client.responses.with_raw_response.retrieve(response_id)
    assert spec_errors("Response", raw.http_response.json()) == []
    return raw.parse()


def test_polled_to_the_loop_s_items_and_replayed_from_n(gw: RunningServer, calc: CalcServer):
    calc.calls.clear()
    client = _client(gw)
    raw = client.responses.with_raw_response.create(
        model="oa",
        input="add two numbers",
        tools=[ADD],
        background=True,
    )
    assert spec_errors("Response", raw.http_response.json()) == []
    queued = raw.parse()
    assert queued.status == "queued" and queued.background is True
    done = _final(client, queued.id)
    assert done.status == "completed"
    assert [i.type for i in done.output] == ["mcp_list_tools", "mcp_call", "message"]
    call = done.output[1]
    assert call.type == "mcp_call" and call.status == "completed" and call.name == "add"
    assert done.output_text == f"tool said: {call.output}"
    assert [name for name, _ in calc.calls] == ["add"]
    events = list(client.responses.retrieve(queued.id, stream=True))
    kinds: list[str] = [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    order = [
        "response.created", "response.in_progress", "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed", "response.mcp_call.in_progress",
        "response.mcp_call_arguments.done", "response.mcp_call.completed",
        "response.output_text.delta", "response.completed",
    ]  # fmt: skip
    positions = [kinds.index(kind) for kind in order]
    assert positions == sorted(positions) and kinds[-1] == "response.completed"
    n = kinds.index("response.mcp_list_tools.completed")
    tail = list(client.responses.retrieve(queued.id, stream=True, starting_after=n))
    assert [e.sequence_number for e in tail] == list(range(n + 1, len(events)))
    assert [e.type for e in tail] == kinds[n + 1 :]


def test_created_streaming_follows_the_loop(gw: RunningServer):
    client = _client(gw)
    stream = client.responses.create(
        model="oa",
        input="add",
        tools=[ADD],
        background=True,
        stream=True,
    )
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.mcp_call.completed" in kinds
    last = events[-1]
    assert isinstance(last, ResponseCompletedEvent)
    replayed = list(client.responses.retrieve(last.response.id, stream=True))
    assert [e.type for e in replayed] == kinds


def test_an_approval_request_ends_the_run_completed_and_a_follow_up_runs_it(
    gw: RunningServer, calc: CalcServer
):
    calc.calls.clear()
    client = _client(gw)
    asking: Any = {**ADD, "require_approval": "always"}
    queued = client.responses.create(model="oa", input="add", tools=[asking], background=True)
    done = _final(client, queued.id)
    assert done.status == "completed"
    assert [i.type for i in done.output] == ["mcp_list_tools", "mcp_approval_request"]
    assert calc.calls == []  # asked, not run
    approval: Any = {"type": "mcp_approval_response", "approve": True,
                "approval_request_id": done.output[1].id}  # fmt: skip
    follow = client.responses.create(
        model="oa", input=[approval], tools=[asking], previous_response_id=done.id,
        background=True,
    )  # fmt: skip
    ran = _final(client, follow.id)
    assert [i.type for i in ran.output] == ["mcp_call", "message"]
    assert [name for name, _ in calc.calls] == ["add"]


def test_a_server_that_cannot_be_listed_fails_the_run_naming_it(gw: RunningServer):
    client = _client(gw)
    dead: Any = {"type": "mcp", "server_label": "dead", "require_approval": "never"}
    queued = client.responses.create(model="oa", input="x", tools=[dead], background=True)
    failed = _final(client, queued.id)
    assert failed.status == "failed" and failed.error is not None
    assert "dead" in failed.error.message
    assert [i.type for i in failed.output] == ["mcp_list_tools"]
    kinds = [e.type for e in client.responses.retrieve(queued.id, stream=True)]
    assert kinds[-2:] == ["response.output_item.done", "response.failed"]
    assert "response.mcp_list_tools.failed" in kinds


async def _rows(data: Path, parent: str) -> list[Any]:
    store = await open_store(database_url(None, data))
    try:
        async with store.transaction() as session:
            rows = await UsageLedger(session).records(UsageFilter())
    finally:
        await store.aclose()
    return sorted((r for r in rows if r.parent_id == parent), key=lambda r: r.request_id)


def test_cancel_mid_call_stops_the_loop(gw: RunningServer, calc: CalcServer, gw_dir: Path):
    calc.calls.clear()
    calc.held.clear()
    calc.release.clear()
    client = _client(gw)
    raw = client.responses.with_raw_response.create(
        model="oa",
        input="hold on",
        tools=[HOLD],
        background=True,
    )
    queued, rid = raw.parse(), raw.headers["x-request-id"]
    try:
        assert calc.held.wait(DEADLINE_S), "the hold tool never ran"
        cancelled = client.responses.cancel(queued.id)
    finally:
        calc.release.set()
    assert cancelled.status == "cancelled"
    assert [i.type for i in cancelled.output] == ["mcp_list_tools", "mcp_call"]
    assert cancelled.output[1].status == "incomplete"  # type: ignore[union-attr]
    polled = client.responses.retrieve(queued.id)
    assert polled.status == "cancelled" and polled.output == cancelled.output
    kinds = [e.type for e in client.responses.retrieve(queued.id, stream=True)]
    assert "response.mcp_call.in_progress" in kinds
    assert "response.mcp_call.completed" not in kinds and "response.completed" not in kinds
    # What ran: one model round and the tool call it made (recorded 499); no second round.
    data = gw_dir / "data"

    def two() -> list[Any] | None:
        found = asyncio.run(_rows(data, queued.id))
        return found if len(found) >= 2 else None

    rows = wait_until(two, "the model round's and the tool call's ledger rows")
    assert [(r.request_id, r.endpoint, r.status) for r in rows] == [
        (rid, "/v1/responses", 200),
        (f"{rid}.t1", "mcp_call", 499),
    ]
    assert calc.calls == [("hold", {})]


def test_a_restart_fails_a_run_killed_mid_loop(
    calc: CalcServer, fake_upstream: Any, tmp_path: Path
):
    calc.held.clear()
    calc.release.clear()
    config = _config(calc, fake_upstream)
    try:
        with run_server(tmp_path, config, env=ENV) as first:
            queued = _client(first).responses.create(
                model="oa",
                input="hold on",
                tools=[HOLD],
                background=True,
            )
            assert calc.held.wait(DEADLINE_S), "the hold tool never ran"
            os.killpg(first.process.pid, signal.SIGKILL)  # no graceful stop: a crash
            first.process.wait()
    finally:
        calc.release.set()
    with run_server(tmp_path, config, env=ENV) as second:
        after = _client(second).responses.retrieve(queued.id)
    assert after.status == "failed"
    assert after.error is not None and after.error.message == RESTARTED
