"""Agents and background responses through the official ``openai`` SDK on a real server:
an agent from the config and one made through the admin API, invoked by ``agent:<name>`` and
by Foundry's agent reference, re-pointed and rolled back with the client unchanged; background
runs polled, replayed from a sequence number, cancelled; and a gateway killed mid-run whose
restart marks the run failed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from modelyard.services.background import RESTARTED
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.responses_spec import spec_errors
from tests.integration.server import RunningServer, run_server
from tests.waiting import DEADLINE_S, wait_until

ADMIN_KEY = "agents-background-operator-key"
ENDLESS = "agents-bg-endless"


def _config(fake: FakeOpenAI) -> dict[str, Any]:
    target = {"provider": "oa", "model": "gpt-4o-mini"}
    return {
        "local": {"enabled": False},
        "providers": {
            "oa": {"type": "openai_compatible", "base_url": fake.base_url, "api_key": "env::K"}
        },
        "deployments": {
            "chat": {"targets": [target]},
            "other": {"targets": [{**target, "model": "gpt-4o"}]},
            "endless": {"targets": [{**target, "model": ENDLESS}]},
        },
        "agents": {
            "helper": {"deployment": "chat", "instructions": "HELPER-RULES", "temperature": 0.5}
        },
    }


ENV = {"K": UPSTREAM_KEY, "MODELYARD_ADMIN_KEY": ADMIN_KEY}


@pytest.fixture(scope="module")
def server(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("agents-background")
    with run_server(tmp, _config(fake_upstream), env=ENV) as running:
        yield running


def _client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=ADMIN_KEY, max_retries=0, timeout=60)


def _admin(server: RunningServer, method: str, path: str, body: Any = None) -> Any:
    resp = httpx.request(
        method,
        f"{server.url}/admin/v1{path}",
        json=body,
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def test_a_config_agent_by_name_and_by_reference(server: RunningServer, fake_upstream: FakeOpenAI):
    client = _client(server)
    raw = client.responses.with_raw_response.create(model="agent:helper", input="hi agent")
    response = raw.parse()
    assert raw.headers["x-modelyard-agent"] == "helper@1"
    assert response.output_text == "echo: hi agent" and response.model == "chat"
    assert spec_errors("Response", raw.http_response.json()) == []
    assert fake_upstream.last_request.json["messages"][0]["content"] == "HELPER-RULES"
    by_ref = client.responses.create(
        input="by reference",
        extra_body={"agent": {"type": "agent_reference", "name": "helper", "version": "1"}},
    )
    assert by_ref.output_text == "echo: by reference"
    assert getattr(by_ref, "agent", None) == {"type": "agent_id", "name": "helper", "version": "1"}
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="agent:nobody", input="x")
    assert "nobody" in str(caught.value)


def test_an_admin_agent_re_pointed_and_rolled_back(
    server: RunningServer, fake_upstream: FakeOpenAI
):
    _admin(server, "POST", "/agents", {"name": "scribe", "deployment": "chat"})
    client = _client(server)
    ask: dict[str, Any] = {"model": "agent:scribe", "input": "write"}
    ref: dict[str, Any] = {"agent_reference": {"type": "agent_reference", "name": "scribe"}}

    def served() -> tuple[str, str]:
        by_model = client.responses.create(**ask)
        first = fake_upstream.last_request.json["model"]
        client.responses.create(input="write", extra_body=ref)
        assert fake_upstream.last_request.json["model"] == first
        return by_model.model, first

    assert served() == ("chat", "gpt-4o-mini")
    _admin(server, "POST", "/agents/scribe/versions", {"deployment": "other"})
    assert served() == ("other", "gpt-4o")  # re-pointed: the same client calls
    agent = _admin(server, "POST", "/agents/scribe/rollback", {})
    assert agent["live_version"] == 1
    assert served() == ("chat", "gpt-4o-mini")


def _chunk(text: str) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": None}
    body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": ENDLESS}
    return b"data: " + orjson.dumps({**body, "choices": [choice]}) + b"\n\n"


@pytest.fixture
def endless(fake_upstream: FakeOpenAI) -> Iterator[dict[str, threading.Event]]:
    """An upstream that streams one chunk and then waits until the gateway closes it."""
    flags = {"started": threading.Event(), "closed": threading.Event()}

    async def handler(request: Request, body: dict[str, Any]) -> Response:
        async def frames() -> AsyncIterator[bytes]:
            try:
                yield _chunk("first words ")
                flags["started"].set()
                await asyncio.Event().wait()
            finally:
                flags["closed"].set()

        return StreamingResponse(frames(), media_type="text/event-stream")

    fake_upstream.script(ENDLESS, handler)
    yield flags
    fake_upstream.unscript(ENDLESS)


def _final(client: openai.OpenAI, response_id: str) -> Any:
    wait_until(
        lambda: client.responses.retrieve(response_id).status not in ("queued", "in_progress"),
        "the background response to end",
    )
    return client.responses.retrieve(response_id)


def test_background_polled_and_replayed(server: RunningServer):
    client = _client(server)
    raw = client.responses.with_raw_response.create(
        model="agent:helper", input="slowly", background=True
    )
    assert spec_errors("Response", raw.http_response.json()) == []
    queued = raw.parse()
    assert queued.status == "queued" and queued.background is True
    done = _final(client, queued.id)
    assert done.status == "completed" and done.output_text == "echo: slowly"
    final = client.responses.with_raw_response.retrieve(queued.id).http_response.json()
    assert spec_errors("Response", final) == []
    events = list(client.responses.retrieve(queued.id, stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    tail = list(client.responses.retrieve(queued.id, stream=True, starting_after=3))
    assert [e.sequence_number for e in tail] == list(range(4, len(events)))


def test_background_cancelled_stops_the_upstream(
    server: RunningServer, endless: dict[str, threading.Event]
):
    client = _client(server)
    queued = client.responses.create(model="endless", input="forever", background=True)
    assert endless["started"].wait(DEADLINE_S)
    raw = client.responses.with_raw_response.cancel(queued.id)
    assert spec_errors("Response", raw.http_response.json()) == []
    cancelled = raw.parse()
    assert cancelled.status == "cancelled" and cancelled.output_text == "first words "
    assert endless["closed"].wait(DEADLINE_S), "the upstream kept streaming after the cancel"
    assert client.responses.retrieve(queued.id).status == "cancelled"
    foreground = client.responses.create(model="chat", input="now")
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(foreground.id)


def test_background_survives_the_client_leaving(server: RunningServer):
    """The HTTP request that made the run is long gone; the run still ends on its own."""
    with httpx.stream(
        "POST",
        f"{server.base_url}/responses",
        json={"model": "chat", "input": "left early", "background": True, "stream": True},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    ) as resp:
        first = next(line for line in resp.iter_lines() if line.startswith("data: "))
    response_id = orjson.loads(first[6:])["response"]["id"]
    done = _final(_client(server), response_id)
    assert done.status == "completed" and done.output_text == "echo: left early"


def test_a_restart_marks_an_unfinished_run_failed(
    fake_upstream: FakeOpenAI, endless: dict[str, threading.Event], tmp_path: Path
):
    config = _config(fake_upstream)
    with run_server(tmp_path, config, env=ENV) as first:
        queued = _client(first).responses.create(model="endless", input="x", background=True)
        assert endless["started"].wait(DEADLINE_S)
        os.killpg(first.process.pid, signal.SIGKILL)  # no graceful stop: a crash
        first.process.wait()
    with run_server(tmp_path, config, env=ENV) as second:
        raw = _client(second).responses.with_raw_response.retrieve(queued.id)
    assert spec_errors("Response", raw.http_response.json()) == []
    after = raw.parse()
    assert after.status == "failed"
    assert after.error is not None and after.error.message == RESTARTED


def _cli(server: RunningServer, *argv: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "modelyard.cli.main", "agents", *argv]
    args += ["--url", server.url, "--api-key", ADMIN_KEY]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_the_agents_cli_lists_shows_and_runs(server: RunningServer):
    listed = _cli(server, "list")
    assert listed.returncode == 0, listed.stderr
    assert any(
        line.startswith("helper  v1 of 1  config  -> chat") for line in listed.stdout.splitlines()
    )
    shown = _cli(server, "show", "helper")
    assert shown.returncode == 0 and " * v1 " in shown.stdout
    ran = _cli(server, "run", "helper", "from the cli")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "echo: from the cli" and "agent: helper@1" in ran.stderr
    missing = _cli(server, "run", "nobody", "x")
    assert missing.returncode == 1 and "nobody" in missing.stderr
