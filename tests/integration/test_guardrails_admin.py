"""A guardrail policy attached through the admin API, end to end with the official ``openai``
SDK: a key created with a blocking policy is blocked from its first call (the server that
created it reloads its keys before answering), and the upstream never sees the prompt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.server import RunningServer, run_server

UPSTREAM_KEY = "sk-guardrails-admin-upstream"
ADMIN_KEY = "operator-secret-guardrails-admin"
CARD = "4111 1111 1111 1111"

pytestmark = pytest.mark.integration


def _config(fake: FakeOpenAI) -> dict[str, Any]:
    target = [{"provider": "fake", "model": "gpt-4o-mini"}]
    return {
        "local": {"enabled": False},
        "providers": {
            "fake": {"type": "openai_compatible", "base_url": fake.base_url, "api_key": "env::K"}
        },
        "deployments": {"chat": {"targets": target}},
        "guardrails": {
            "policies": {
                "strict": {"guards": [{"kind": "pii", "phases": ["input"], "action": "block"}]}
            }
        },
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def server(fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp: Path = tmp_path_factory.mktemp("guardrails-admin")
    env = {"K": UPSTREAM_KEY, "MODELYARD_ADMIN_KEY": ADMIN_KEY}
    with run_server(tmp, _config(fake), env=env) as running:
        yield running


def _admin(server: RunningServer, path: str, body: dict[str, Any]) -> Any:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    response = httpx.post(f"{server.url}/admin/v1{path}", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_a_key_created_with_a_blocking_policy_is_blocked_at_once(
    server: RunningServer, fake: FakeOpenAI
) -> None:
    _admin(server, "/projects", {"id": "acme"})
    guarded = _admin(server, "/keys", {"project": "acme", "guardrails": "strict"})
    plain = _admin(server, "/keys", {"project": "acme"})
    messages: list[Any] = [{"role": "user", "content": f"my card is {CARD}"}]
    client = openai.OpenAI(base_url=server.base_url, api_key=guarded["secret"], max_retries=0)
    before = len(fake.requests)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="chat", messages=messages)
    assert info.value.code == "content_filter"
    assert CARD not in str(info.value)
    assert len(fake.requests) == before  # nothing reached the upstream
    other = openai.OpenAI(base_url=server.base_url, api_key=plain["secret"], max_retries=0)
    answer = other.chat.completions.create(model="chat", messages=messages)
    assert answer.choices[0].message.content == f"echo: my card is {CARD}"
