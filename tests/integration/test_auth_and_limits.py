"""Keys (when configured) and the gateway's bound on requests in flight."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.fakes.held import HeldAnswers
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
HELD = "held-in-flight"  # scripted on the fake by the in-flight test: answers when released


@pytest.fixture(scope="module")
def keyed(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    tmp: Path = tmp_path_factory.mktemp("keyed")
    config = {
        "local": {"enabled": False},
        "server": {"api_keys": ["env::GATEWAY_KEY", "second-key"], "max_in_flight": 2},
        "providers": {
            "fake": {
                "type": "openai_compatible",
                "base_url": fake_upstream.base_url,
                "api_key": "env::UP_KEY",
            }
        },
        "deployments": {
            "chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]},
            "held": {"targets": [{"provider": "fake", "model": HELD}]},
        },
    }
    with run_server(
        tmp, config, env={"GATEWAY_KEY": "my-gateway-key", "UP_KEY": UPSTREAM_KEY}
    ) as server:
        yield server


def _client(server: RunningServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)


def test_keys_required_when_configured(keyed: RunningServer):
    for key in ("my-gateway-key", "second-key"):
        assert _client(keyed, key).chat.completions.create(model="chat", messages=USER).choices
    with pytest.raises(openai.AuthenticationError) as info:
        _client(keyed, "wrong").chat.completions.create(model="chat", messages=USER)
    assert info.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        _client(keyed, "wrong").models.list()
    with pytest.raises(openai.AuthenticationError):
        _client(keyed, "wrong").embeddings.create(model="chat", input="x")


def test_key_never_logged(keyed: RunningServer):
    _client(keyed, "my-gateway-key").chat.completions.create(model="chat", messages=USER)
    assert "my-gateway-key" not in keyed.log()


def test_the_callers_key_id_stays_inside_the_platform(
    keyed: RunningServer, fake_upstream: FakeOpenAI
):
    """Only the embedded model's worker gets ``x-modelyard-client`` (for its fair queues);
    a vendor's upstream never learns which of our keys called."""
    _client(keyed, "my-gateway-key").chat.completions.create(model="chat", messages=USER)
    seen = fake_upstream.last_request.headers
    assert seen["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert not [name for name in seen if name.startswith("x-modelyard")]


def test_in_flight_limit_answers_429_with_retry_after(
    keyed: RunningServer, fake_upstream: FakeOpenAI
):
    """Two calls held upstream fill the bound of 2; two more are refused while they are held.
    (With a fixed upstream delay instead, a loaded machine could start the later calls after
    the first two had ended, and admit them.)"""
    client = _client(keyed, "my-gateway-key")

    def call() -> int:
        try:
            client.chat.completions.create(model="held", messages=USER)
            return 200
        except openai.RateLimitError as exc:
            assert exc.response.headers["retry-after"] == "1"
            assert exc.code == "gateway_busy"
            return 429

    held = HeldAnswers()
    fake_upstream.script(HELD, held)
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            admitted = [pool.submit(call) for _ in range(2)]
            held.wait_for_calls(2)  # both under way upstream: the gateway's two slots taken
            refused = [call() for _ in range(2)]
            held.release()
            statuses = [future.result() for future in admitted]
    finally:
        held.release()
        fake_upstream.unscript(HELD)
    assert (statuses, refused) == ([200, 200], [429, 429])
    assert held.calls == 2  # the refused calls never reached the upstream
