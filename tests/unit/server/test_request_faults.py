"""Issue 17 #2 and #3 through the real app: a client body nested 256-1,024 levels deep is a 400
naming the field (not a 500 that leaves its reservation held); a provider ``base_url`` with
``user:pass@`` is refused by the config, and by the transport as a classified failure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import orjson
import pytest
from starlette.testclient import TestClient

from modelyard.config.errors import ConfigError
from modelyard.config.loader import settings_from_data
from modelyard.config.schema import Settings
from modelyard.core.errors import UpstreamConnectionError
from modelyard.core.timeouts import CallTimeouts
from modelyard.providers.transport import Transport
from modelyard.server.app import create_app
from tests.fakes.openai_upstream import FakeOpenAI

KEY = "sk-request-faults-0123456789"
USER = [{"role": "user", "content": "hello"}]
TIMEOUTS = CallTimeouts(connect=5.0, first_token=5.0, total=5.0)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def client(fake: FakeOpenAI) -> Iterator[TestClient]:
    settings = Settings.model_validate(
        {
            "local": {"enabled": False},
            "providers": {
                "fake": {"type": "openai_compatible", "base_url": fake.base_url, "api_key": KEY},
                # Nothing listens on port 9: a target that fails before any answer.
                "down": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"},
            },
            "deployments": {
                "chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]},
                "mixed": {
                    "targets": [
                        {"provider": "down", "model": "gpt-4o-mini"},
                        {"provider": "fake", "model": "gpt-4o-mini"},
                    ]
                },
            },
        }
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


NESTED = "@NESTED@"


def _post(client: TestClient, path: str, body: dict[str, Any], depth: int) -> httpx.Response:
    """``body`` with ``NESTED`` replaced by a list nested ``depth`` deep, written by hand (JSON
    encoders refuse such depths, which is the point)."""
    text = orjson.dumps(body).replace(f'"{NESTED}"'.encode(), b"[" * depth + b"1" + b"]" * depth)
    return client.post(path, content=text, headers={"content-type": "application/json"})


@pytest.mark.parametrize("depth", [256, 300, 1_000])
def test_a_deeply_nested_extra_is_a_400_naming_it(client: TestClient, depth: int) -> None:
    body = {"model": "chat", "messages": USER, "max_tokens": 40, "x": NESTED}
    response = _post(client, "/v1/chat/completions", body, depth)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "x" and "nested" in error["message"]


@pytest.mark.parametrize("depth", [300, 1_000])
def test_a_deeply_nested_tool_schema_is_a_400_in_either_dialect(
    client: TestClient, depth: int
) -> None:
    schema = {"type": "object", "properties": {"a": {"default": NESTED}}}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    openai = {"model": "chat", "messages": USER, "tools": [tool]}
    assert _post(client, "/v1/chat/completions", openai, depth).status_code == 400
    anthropic_tool = {"name": "f", "input_schema": schema}
    anthropic = {"model": "chat", "max_tokens": 40, "messages": USER, "tools": [anthropic_tool]}
    response = _post(client, "/v1/messages", anthropic, depth)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "error"


def test_a_base_url_with_credentials_is_refused_without_echoing_them() -> None:
    provider = {"type": "openai", "base_url": "https://alice:s3cret-pass@api.example/v1"}
    with pytest.raises(ConfigError) as raised:
        settings_from_data({"providers": {"p": provider}})
    assert "credentials" in str(raised.value) and "s3cret-pass" not in str(raised.value)


async def test_a_request_aiohttp_will_not_send_is_a_classified_failure_of_that_target() -> None:
    """What the config refuses can still reach the transport (a plugin's settings): aiohttp
    raises ``ValueError`` before sending, which must fail over, not escape as a 500."""
    transport = Transport()
    url = "http://alice:s3cret-pass@127.0.0.1:9/v1/chat/completions"
    try:
        with pytest.raises(UpstreamConnectionError) as raised:
            await transport.post(url, {"authorization": f"Bearer {KEY}"}, b"{}", TIMEOUTS, "p")
    finally:
        await transport.aclose()
    assert raised.value.same_target is False and raised.value.retryable
    assert "s3cret-pass" not in str(raised.value)


def test_a_failing_first_target_fails_over_to_the_next(client: TestClient) -> None:
    for _ in range(3):
        response = client.post("/v1/chat/completions", json={"model": "mixed", "messages": USER})
        assert response.status_code == 200, response.text
        assert response.headers["x-modelyard-provider"] == "fake"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/messages", 405), ("POST", "/v1/messages/batches", 404)],
)
def test_routing_errors_under_the_messages_api_come_in_anthropics_shape(
    client: TestClient, method: str, path: str, status: int
) -> None:
    """Issue 17 #10."""
    response = client.request(method, path)
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert body["request_id"] == response.headers["request-id"] == response.headers["x-request-id"]
    if status == 405:
        assert "POST" in response.headers["allow"]


def test_routing_errors_elsewhere_come_in_openais_shape_with_the_path_bounded(
    client: TestClient,
) -> None:
    response = client.get("/v1/" + "x" * 20_000)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "not_found_error" and len(error["message"]) < 400


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_a_15_mb_model_name_is_answered_with_a_short_404(client: TestClient, path: str) -> None:
    """Issue 17 #6: the answer (and so any log of it) stays small."""
    body = {"model": "m" * 15_000_000, "max_tokens": 10, "messages": USER}
    response = client.post(path, content=orjson.dumps(body))
    assert response.status_code == 404
    assert len(response.content) < 1_000


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64,not*base64!",
        "data:image/png;base64,iVBORw0KGgo=x",
        "data:image/png,rawbytes",
    ],
)
def test_a_bad_inline_image_for_an_openai_target_is_a_400_naming_the_part(
    client: TestClient, fake: FakeOpenAI, url: str
) -> None:
    """Issue 17 #11: checked before the upstream is called, in either dialect."""
    before = len(fake.requests)
    image = {"type": "image_url", "image_url": {"url": url}}
    content = [{"type": "text", "text": "what is this?"}, image]
    body = {"model": "chat", "messages": [{"role": "user", "content": content}]}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "messages[0].content[1].image_url.url"
    assert len(fake.requests) == before


def test_a_bad_base64_image_through_the_messages_api_is_a_400_too(
    client: TestClient, fake: FakeOpenAI
) -> None:
    before = len(fake.requests)
    source = {"type": "base64", "media_type": "image/png", "data": "%%%"}
    content = [{"type": "image", "source": source}, {"type": "text", "text": "what?"}]
    body = {"model": "chat", "max_tokens": 10, "messages": [{"role": "user", "content": content}]}
    response = client.post("/v1/messages", json=body)
    assert response.status_code == 400, response.text
    assert "base64" in response.json()["error"]["message"]
    assert len(fake.requests) == before


def test_a_good_inline_image_goes_through(client: TestClient) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    body = {"model": "chat", "messages": [{"role": "user", "content": [image]}]}
    assert client.post("/v1/chat/completions", json=body).status_code == 200
