from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.bedrock_upstream import TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY, FakeBedrock
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.server import RunningServer, run_server

UPSTREAM_KEY = "sk-upstream-test-secret"
FAULTS = ["fail-400", "fail-401", "fail-429", "fail-500", "fail-503", "malformed-json"]
STREAM_FAULTS = ["drop-mid-stream", "truncated-sse"]


MATRIX_CASES = ["ok", "fail-400", "fail-429", "fail-500", "drop-mid-stream"]
MATRIX_UPSTREAMS = ["openai", "azure", "anthropic", "gemini", "bedrock"]
BEDROCK_ENV = {
    "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
    "AWS_REGION": TEST_REGION,
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture(scope="session")
def vendor_fakes() -> Iterator[dict[str, FakeAnthropic | FakeGemini | FakeBedrock]]:
    with (
        FakeAnthropic(api_key=UPSTREAM_KEY) as a,
        FakeGemini(api_key=UPSTREAM_KEY) as g,
        FakeBedrock() as b,
    ):
        yield {"anthropic": a, "gemini": g, "bedrock": b}


def matrix_config(
    fake: FakeOpenAI, vendors: dict[str, FakeAnthropic | FakeGemini | FakeBedrock]
) -> dict[str, object]:
    """Providers m-<upstream> and deployments m-<upstream>-<case>, each with one attempt."""
    providers: dict[str, object] = {
        "m-openai": {
            "type": "openai_compatible",
            "base_url": fake.base_url,
            "api_key": "env::UP_KEY",
        },
        # Azure with an Entra-style bearer token (the fake checks bearer keys).
        "m-azure": {
            "type": "azure_openai",
            "base_url": fake.base_url.removesuffix("/v1"),
            "api_key": "env::UP_KEY",
            "options": {"auth": "bearer"},
        },
        "m-anthropic": {
            "type": "anthropic",
            "base_url": vendors["anthropic"].base_url,
            "api_key": "env::UP_KEY",
        },
        "m-gemini": {
            "type": "gemini",
            "base_url": vendors["gemini"].base_url,
            "api_key": "env::UP_KEY",
        },
        "m-bedrock": {"type": "bedrock", "base_url": vendors["bedrock"].base_url},
    }
    deployments = {
        f"m-{up}-{case}": {
            "retry": {"attempts": 1},
            "targets": [{"provider": f"m-{up}", "model": "model-x" if case == "ok" else case}],
        }
        for up in MATRIX_UPSTREAMS
        for case in MATRIX_CASES
    }
    return {"providers": providers, "deployments": deployments}


def gateway_config(fake: FakeOpenAI) -> dict[str, object]:
    target = {"provider": "fake", "model": "gpt-4o-mini"}
    deployments: dict[str, object] = {
        "chat": {"targets": [target]},
        "tuned": {"targets": [{**target, "params": {"temperature": 0.1, "presence_penalty": 0.5}}]},
        "embed": {"targets": [{"provider": "fake", "model": "text-embedding-3-small"}]},
        "down": {"targets": [{"provider": "nowhere", "model": "x"}]},
        "stalled": {"targets": [{"provider": "impatient", "model": "hang"}]},
        "endless": {"targets": [{"provider": "fake", "model": "endless-stream"}]},
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
    fake_upstream: FakeOpenAI,
    vendor_fakes: dict[str, FakeAnthropic | FakeGemini | FakeBedrock],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    tmp: Path = tmp_path_factory.mktemp("gateway")
    config = gateway_config(fake_upstream)
    matrix = matrix_config(fake_upstream, vendor_fakes)
    config["providers"].update(matrix["providers"])  # type: ignore[attr-defined]
    config["deployments"].update(matrix["deployments"])  # type: ignore[attr-defined]
    env = {"UP_KEY": UPSTREAM_KEY, **BEDROCK_ENV}
    with run_server(tmp, config, env=env) as server:
        yield server


@pytest.fixture(scope="session")
def client(gateway: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0, timeout=60)
