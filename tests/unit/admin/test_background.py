"""Background responses in-process: queued then polled to the end, replayed from any event,
followed live, cancelled (the upstream stream closed), refused where the spec refuses them,
and left by a dead gateway: failed at the next start, never ``in_progress`` forever."""

from __future__ import annotations

import asyncio
import csv
import io
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.testclient import TestClient

from modelyard.config.schema import Settings
from modelyard.core.ids import timed_id
from modelyard.server.app import create_app
from modelyard.services.background import RESTARTED, STOPPED
from modelyard.services.response_state import Timing
from modelyard.store import open_store
from modelyard.store.background import BackgroundRun, BackgroundRuns
from tests.fakes.openai_upstream import FakeOpenAI
from tests.migrated import MigratedSqlite
from tests.unit.admin.conftest import ADMIN_KEY, UPSTREAM_KEY, Admin
from tests.waiting import DEADLINE_S, wait_until

ENDLESS = "background-endless"


def _settings(fake_url: str) -> Settings:
    target = {"provider": "fake", "model": "gpt-4o-mini"}
    return Settings.model_validate(
        {
            "local": {"enabled": False},
            "providers": {
                "fake": {"type": "openai_compatible", "base_url": fake_url, "api_key": UPSTREAM_KEY}
            },
            "deployments": {
                "chat": {"targets": [target]},
                "endless": {"targets": [{**target, "model": ENDLESS}]},
            },
        }
    )


def _url(tmp: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp / 'store.db'}"


@pytest.fixture
def site(
    env: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeOpenAI, migrated_sqlite: MigratedSqlite
) -> Iterator[Admin]:
    url = migrated_sqlite.url(tmp_path / "store.db")
    with TestClient(create_app(_settings(upstream.base_url), store_url=url)) as client:
        yield Admin(client)


def _create(site: Admin, **fields: Any) -> Any:
    return site.call(ADMIN_KEY, "POST", "/v1/responses", json={"background": True, **fields})


def _get(site: Admin, response_id: str) -> dict[str, Any]:
    body: dict[str, Any] = site.ok(ADMIN_KEY, "GET", f"/v1/responses/{response_id}")
    return body


def _events(text: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(line[len("data: ") :])
        for line in text.splitlines()
        if line.startswith("data: ")
    ]


def _finished(site: Admin, response_id: str) -> dict[str, Any]:
    wait_until(
        lambda: _get(site, response_id)["status"] not in ("queued", "in_progress"),
        "the background response to end",
    )
    return _get(site, response_id)


def test_queued_then_polled_to_completed(site: Admin):
    raw = _create(site, model="chat", input="in the background")
    assert raw.status_code == 200, raw.text
    queued = raw.json()
    assert queued["status"] == "queued" and queued["background"] is True
    done = _finished(site, queued["id"])
    assert done["status"] == "completed" and done["background"] is True
    assert done["output"][0]["content"][0]["text"] == "echo: in the background"
    items = site.ok(ADMIN_KEY, "GET", f"/v1/responses/{queued['id']}/input_items")
    assert items["data"][0]["content"][0]["text"] == "in the background"


def test_replay_after_a_sequence_number(site: Admin):
    response_id = _create(site, model="chat", input="replay me").json()["id"]
    _finished(site, response_id)
    whole = _events(site.call(ADMIN_KEY, "GET", f"/v1/responses/{response_id}?stream=true").text)
    numbers = [e["sequence_number"] for e in whole]
    assert numbers == list(range(len(whole)))
    assert whole[0]["type"] == "response.created" and whole[-1]["type"] == "response.completed"
    assert whole[-1]["response"]["output"][0]["content"][0]["text"] == "echo: replay me"
    tail = site.call(ADMIN_KEY, "GET", f"/v1/responses/{response_id}?stream=true&starting_after=2")
    assert _events(tail.text) == whole[3:]


def test_background_with_stream_sends_the_events_as_they_come(site: Admin):
    raw = _create(site, model="chat", input="streamed background", stream=True)
    events = _events(raw.text)
    assert events[0]["response"]["background"] is True
    assert events[-1]["type"] == "response.completed"
    response_id = events[0]["response"]["id"]
    assert _get(site, response_id)["status"] == "completed"


def test_background_needs_store(site: Admin):
    raw = _create(site, model="chat", input="x", store=False)
    assert raw.status_code == 400 and raw.json()["error"]["param"] == "background"


def test_cancel_of_a_foreground_response_is_a_400(site: Admin):
    done = site.ok(ADMIN_KEY, "POST", "/v1/responses", json={"model": "chat", "input": "x"})
    raw = site.call(ADMIN_KEY, "POST", f"/v1/responses/{done['id']}/cancel")
    assert raw.status_code == 400 and raw.json()["error"]["param"] == "response_id"
    unknown = site.call(ADMIN_KEY, "POST", "/v1/responses/resp_nope/cancel")
    assert unknown.status_code == 404


def _chunk(text: str) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": None}
    body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": ENDLESS}
    return b"data: " + orjson.dumps({**body, "choices": [choice]}) + b"\n\n"


@pytest.fixture
def endless(upstream: FakeOpenAI) -> Iterator[dict[str, threading.Event]]:
    """An upstream that streams one chunk, then waits for ever: ``started`` once the chunk is
    out, ``closed`` once the gateway has closed the stream."""
    flags = {"started": threading.Event(), "closed": threading.Event()}

    async def handler(request: Request, body: dict[str, Any]) -> Response:
        async def frames() -> AsyncIterator[bytes]:
            try:
                yield _chunk("first words ")
                flags["started"].set()
                await asyncio.Event().wait()  # until the gateway closes the stream
            finally:
                flags["closed"].set()

        return StreamingResponse(frames(), media_type="text/event-stream")

    upstream.script(ENDLESS, handler)
    yield flags
    upstream.unscript(ENDLESS)


def test_cancel_stops_the_upstream_and_ends_cancelled(
    site: Admin, endless: dict[str, threading.Event]
):
    response_id = _create(site, model="endless", input="go on").json()["id"]
    assert endless["started"].wait(DEADLINE_S)
    wait_until(lambda: _get(site, response_id)["status"] == "in_progress", "the run to start")
    cancelled = site.ok(ADMIN_KEY, "POST", f"/v1/responses/{response_id}/cancel")
    assert cancelled["status"] == "cancelled"
    assert endless["closed"].wait(DEADLINE_S), "the upstream kept streaming after the cancel"
    assert _get(site, response_id)["status"] == "cancelled"
    again = site.ok(ADMIN_KEY, "POST", f"/v1/responses/{response_id}/cancel")
    assert again["status"] == "cancelled"  # an ended run is returned as it is


def test_a_follower_sees_events_as_the_run_makes_them(
    site: Admin, endless: dict[str, threading.Event]
):
    response_id = _create(site, model="endless", input="follow").json()["id"]
    assert endless["started"].wait(DEADLINE_S)
    seen: list[dict[str, Any]] = []
    url = f"/v1/responses/{response_id}?stream=true"
    with site.client.stream("GET", url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: "):
                seen.append(orjson.loads(line[6:]))
            if seen and seen[-1]["type"] == "response.output_text.delta":
                site.ok(ADMIN_KEY, "POST", f"/v1/responses/{response_id}/cancel")
    assert [e["sequence_number"] for e in seen] == list(range(len(seen)))
    assert any(e.get("delta") == "first words " for e in seen)


def test_a_run_a_dead_gateway_left_is_failed_at_the_next_start(
    env: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeOpenAI
):
    body = {
        "id": "resp_orphan",
        "object": "response",
        "created_at": 1,
        "status": "in_progress",
        "background": True,
        "output": [],
    }

    async def seed() -> None:
        store = await open_store(_url(tmp_path))
        try:
            row = BackgroundRun(
                "resp_orphan",
                "",
                "in_progress",
                f"{socket.gethostname()}/999999999/999999999",
                orjson.dumps(body).decode(),
                None,
            )
            async with store.transaction() as session:
                await BackgroundRuns(session).put(row)
        finally:
            await store.aclose()

    asyncio.run(seed())
    with TestClient(create_app(_settings(upstream.base_url), store_url=_url(tmp_path))) as client:
        got = Admin(client).ok(ADMIN_KEY, "GET", "/v1/responses/resp_orphan")
    assert got["status"] == "failed"
    assert got["error"]["message"] == RESTARTED


def test_another_processs_run_is_polled_without_waiting_for_a_flush(
    env: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeOpenAI, migrated_sqlite: MigratedSqlite
):
    response_id = timed_id("resp")  # a fresh id: a stored-response miss on it would wait
    body = {"id": response_id, "object": "response", "created_at": 1, "status": "in_progress",
            "background": True, "output": []}  # fmt: skip
    row = BackgroundRun(response_id, "", "in_progress", "elsewhere/1/1",
                        orjson.dumps(body).decode(), None)  # fmt: skip
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    url = migrated_sqlite.url(tmp_path / "store.db")
    with TestClient(create_app(_settings(upstream.base_url), store_url=url)) as client:
        writes = client.app.state.modelyard.response_writes  # type: ignore[attr-defined]
        writes.timing = Timing(sleep=sleep)
        asyncio.run(_put_run(url, row))  # as another gateway process runs it
        site = Admin(client)
        assert _get(site, response_id)["status"] == "in_progress"
        assert slept == []
        missing = site.call(ADMIN_KEY, "GET", f"/v1/responses/{timed_id('resp')}")
        assert missing.status_code == 404 and len(slept) == 1  # neither: one more look


async def _put_run(url: str, row: BackgroundRun) -> None:
    store = await open_store(url)
    try:
        async with store.transaction() as session:
            await BackgroundRuns(session).put(row)
    finally:
        await store.aclose()


def test_another_projects_key_finds_nothing(site: Admin, endless: dict[str, threading.Event]):
    site.project("a")
    site.project("b")
    key_a, key_b = site.key("a")["secret"], site.key("b")["secret"]
    body = {"model": "endless", "input": "mine", "background": True}
    response_id = site.ok(key_a, "POST", "/v1/responses", json=body)["id"]
    assert endless["started"].wait(DEADLINE_S)
    for method, path in (
        ("GET", f"/v1/responses/{response_id}"),
        ("GET", f"/v1/responses/{response_id}?stream=true"),
        ("POST", f"/v1/responses/{response_id}/cancel"),
    ):
        assert site.call(key_b, method, path).status_code == 404, path
    assert site.ok(key_a, "POST", f"/v1/responses/{response_id}/cancel")["status"] == "cancelled"


def test_a_graceful_stop_records_its_runs_failed(
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    upstream: FakeOpenAI,
    endless: dict[str, threading.Event],
):
    settings = _settings(upstream.base_url)
    with TestClient(create_app(settings, store_url=_url(tmp_path))) as client:
        response_id = Admin(client).ok(
            ADMIN_KEY,
            "POST",
            "/v1/responses",
            json={"model": "endless", "input": "x", "background": True},
        )["id"]
        assert endless["started"].wait(DEADLINE_S)
    assert endless["closed"].wait(DEADLINE_S)
    with TestClient(create_app(settings, store_url=_url(tmp_path))) as client:
        again = Admin(client)
        got = again.ok(ADMIN_KEY, "GET", f"/v1/responses/{response_id}")
        rows = [r for r in _ledger(again) if r["parent_id"] == response_id]
    assert got["status"] == "failed" and got["error"]["message"] == STOPPED
    assert len(rows) == 1  # its ledger row was written before the stop (the stream closed: 499)


def _ledger(site: Admin) -> list[dict[str, str]]:
    text = site.call(ADMIN_KEY, "GET", "/admin/v1/usage.csv").text
    return list(csv.DictReader(io.StringIO(text)))


def test_a_cancelled_run_is_one_ledger_row_closed_when_cancelled(
    site: Admin, endless: dict[str, threading.Event]
):
    response_id = _create(site, model="endless", input="bill me").json()["id"]
    assert endless["started"].wait(DEADLINE_S)
    site.ok(ADMIN_KEY, "POST", f"/v1/responses/{response_id}/cancel")
    wait_until(lambda: any(r["parent_id"] == response_id for r in _ledger(site)), "the ledger row")
    rows = [r for r in _ledger(site) if r["parent_id"] == response_id]
    assert len(rows) == 1 and rows[0]["status"] == "499"  # closed by the cancel, as a client gone


def test_an_unknown_model_is_a_404_before_anything_is_queued(site: Admin):
    raw = _create(site, model="no-such-model", input="x")
    assert raw.status_code == 404 and raw.json()["error"]["param"] == "model"
