from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.server import RunningServer, run_server

UPSTREAM_KEY = "sk-upstream-test-secret"
FAULTS = ["fail-400", "fail-401", "fail-429", "fail-500", "fail-503", "malformed-json"]
STREAM_FAULTS = ["drop-mid-stream", "truncated-sse"]


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY) as fake:
        yield fake


def gateway_config(fake: FakeOpenAI) -> dict[str, object]:
    target = {"provider": "fake", "model": "gpt-4o-mini"}
    deployments: dict[str, object] = {
        "chat": {"targets": [target]},
        "tuned": {"targets": [{**target, "params": {"temperature": 0.1, "presence_penalty": 0.5}}]},
        "embed": {"targets": [{"provider": "fake", "model": "text-embedding-3-small"}]},
        "down": {"targets": [{"provider": "nowhere", "model": "x"}]},
        "stalled": {"targets": [{"provider": "impatient", "model": "hang"}]},
    }
    for name in FAULTS + STREAM_FAULTS:
        deployments[name] = {"targets": [{"provider": "fake", "model": name}]}
    return {
        "server": {"max_body_bytes": 64 * 1024},
        # A short queue so the queue-full test can fill it with a handful of requests.
        "local": {"queue_size": 2},
        "providers": {
            "fake": {
                "type": "openai_compatible",
                "base_url": fake.base_url,
                "api_key": "env::UP_KEY",
            },
            "nowhere": {"type": "vllm", "base_url": "http://127.0.0.1:9/v1"},
            "impatient": {
                "type": "openai_compatible",
                "base_url": fake.base_url,
                "api_key": "env::UP_KEY",
                "timeouts": {"first_token": 0.5, "total": 5},
            },
        },
        "deployments": deployments,
    }


@pytest.fixture(scope="session")
def gateway(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    tmp: Path = tmp_path_factory.mktemp("gateway")
    with run_server(tmp, gateway_config(fake_upstream), env={"UP_KEY": UPSTREAM_KEY}) as server:
        yield server


@pytest.fixture(scope="session")
def client(gateway: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0, timeout=60)
