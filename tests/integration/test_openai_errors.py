"""Every error path of the OpenAI dialect: right status, right shape, the SDK's own exception."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def _post(gateway: RunningServer, content: bytes | str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.base_url}/chat/completions",
        content=content,
        headers={"content-type": "application/json", **headers},
        timeout=30,
    )


def _assert_openai_error(
    resp: httpx.Response, status: int, param: str | None = None
) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err: dict[str, Any] = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    if param is not None:
        assert err["param"] == param
    return err


def test_malformed_json_is_400(gateway: RunningServer):
    err = _assert_openai_error(_post(gateway, b'{"model": "chat", "messages": ['), 400, "body")
    assert "not valid JSON" in err["message"]


def test_empty_body_is_400(gateway: RunningServer):
    _assert_openai_error(_post(gateway, b""), 400, "body")


def test_wrong_field_names_the_field(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="chat", messages=USER, extra_body={"temperature": "hot"}
        )
    assert info.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as info:
        # Deliberately a role the API does not have: the gateway must name the field.
        robot = [{"role": "robot", "content": "x"}]
        client.chat.completions.create(model="chat", messages=robot)  # type: ignore[arg-type]
    assert "messages[0].role" in info.value.message


def test_unknown_model_is_404_listing_models(client: openai.OpenAI):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=USER)
    assert "'gpt-9' does not exist" in info.value.message
    assert "chat" in info.value.message and "local" in info.value.message
    assert info.value.code == "model_not_found"


def test_body_over_the_limit_is_413(gateway: RunningServer, client: openai.OpenAI):
    huge: list[ChatCompletionMessageParam] = [{"role": "user", "content": "x" * (70 * 1024)}]
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="chat", messages=huge)
    assert info.value.status_code == 413
    # A chunked body without Content-Length is bounded too.
    resp = httpx.post(
        f"{gateway.base_url}/chat/completions",
        content=iter(
            [b'{"model":"chat","messages":[{"role":"user","content":"', b"y" * 70000, b'"}]}']
        ),
        headers={"content-type": "application/json"},
    )
    _assert_openai_error(resp, 413)


@pytest.mark.parametrize(
    ("deployment", "exception", "status"),
    [
        ("fail-400", openai.BadRequestError, 400),
        ("fail-401", openai.InternalServerError, 502),
        ("fail-429", openai.RateLimitError, 429),
        ("fail-500", openai.InternalServerError, 502),
        ("fail-503", openai.InternalServerError, 503),
        ("malformed-json", openai.InternalServerError, 502),
        ("down", openai.InternalServerError, 502),
        ("stalled", openai.InternalServerError, 504),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_failures_map_to_statuses(
    client: openai.OpenAI, deployment: str, exception: type[Exception], status: int, stream: bool
):
    with pytest.raises(exception) as info:
        result = client.chat.completions.create(model=deployment, messages=USER, stream=stream)
        if stream:
            list(result)
    assert isinstance(info.value, openai.APIStatusError)
    assert info.value.status_code == status
    assert UPSTREAM_KEY not in info.value.message
    if status == 429:
        assert info.value.response.headers["retry-after"] == "2"


@pytest.mark.parametrize("deployment", ["drop-mid-stream", "truncated-sse"])
def test_failure_after_first_byte_ends_stream_with_error_event(
    client: openai.OpenAI, deployment: str
):
    stream = client.chat.completions.create(model=deployment, messages=USER, stream=True)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk)
    assert received, "the stream should have started before failing"
    assert "upstream" in str(info.value.message)


def test_unknown_route_and_method(gateway: RunningServer):
    _assert_openai_error(httpx.get(f"{gateway.base_url}/nothing-here"), 404)
    wrong_method = httpx.get(f"{gateway.base_url}/chat/completions")
    _assert_openai_error(wrong_method, 405)
    assert wrong_method.headers["allow"] == "POST"


def test_health_and_readiness(gateway: RunningServer):
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    # This server has a store (SQLite), no Redis, and the embedded model loaded.
    ready = {"status": "ready", "store": "ok", "redis": "none", "local": "ready"}
    assert httpx.get(f"{gateway.url}/readyz").json() == ready
    # Claude Code probes the base URL with HEAD / on every start.
    assert httpx.head(f"{gateway.url}/").status_code == 200
    assert httpx.head(f"{gateway.url}/nothing-here").status_code == 404
