"""The Messages dialect through the real app, a fake OpenAI upstream and the official SDK.

The app is built with ``create_app`` and the dialect's routes appended, then served by uvicorn
in a thread: the routes are not registered in ``server.app`` yet.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import anthropic
import pytest
import uvicorn
from anthropic.types import (
    ContentBlock,
    ImageBlockParam,
    MessageParam,
    ParsedContentBlock,
    TextBlock,
    ToolParam,
)
from starlette.applications import Starlette

from modelyard.config.loader import settings_from_data
from modelyard.server.anthropic_routes import ROUTES
from modelyard.server.app import create_app
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.waiting import wait_until

GATEWAY_KEY = "sk-gateway-messages-test"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
USER: list[MessageParam] = [{"role": "user", "content": "hello there"}]
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
FAULTS = ["fail-429", "fail-500", "fail-503", "drop-mid-stream"]


def _text(block: ContentBlock | ParsedContentBlock) -> str:
    assert isinstance(block, TextBlock), block
    return block.text


def _config(fake: FakeOpenAI) -> dict[str, object]:
    # One attempt each: these tests are about how failures look, not about retries.
    once = {"attempts": 1}
    deployments: dict[str, object] = {
        "chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]},
        "stalled": {"targets": [{"provider": "impatient", "model": "hang"}], "retry": once},
    }
    for name in FAULTS:
        deployments[name] = {"targets": [{"provider": "fake", "model": name}], "retry": once}
    upstream = {"type": "openai_compatible", "base_url": fake.base_url, "api_key": UPSTREAM_KEY}
    return {
        "server": {"max_body_bytes": 64 * 1024, "api_keys": [GATEWAY_KEY]},
        "local": {"enabled": False},
        "providers": {
            "fake": upstream,
            "impatient": {**upstream, "timeouts": {"first_token": 0.5, "total": 5}},
        },
        "deployments": deployments,
    }


@contextlib.contextmanager
def _serve(app: Starlette) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), "the gateway to start")
    assert server.started, "the gateway did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def gateway_url(fake_upstream: FakeOpenAI) -> Iterator[str]:
    app = create_app(settings_from_data(_config(fake_upstream)))
    app.router.routes.extend(ROUTES)
    with _serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def client(gateway_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway_url, api_key=GATEWAY_KEY, max_retries=0, timeout=30)


def test_plain_message(client: anthropic.Anthropic, fake_upstream: FakeOpenAI):
    raw = client.messages.with_raw_response.create(model="chat", max_tokens=64, messages=USER)
    message = raw.parse()
    assert message.id.startswith("msg_") and message.model == "chat"
    assert message.role == "assistant" and message.type == "message"
    assert [b.type for b in message.content] == ["text"]
    assert _text(message.content[0]) == "echo: hello there"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message.usage.cache_read_input_tokens == 0
    assert raw.headers["x-modelyard-deployment"] == "chat"
    assert raw.headers["x-modelyard-model"] == "gpt-4o-mini"
    assert message._request_id == raw.headers["x-request-id"]
    sent = fake_upstream.last_request.json
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"] == [{"role": "user", "content": "hello there"}]
    assert sent["max_tokens"] == 64


def test_system_parameters_and_passthrough(client: anthropic.Anthropic, fake_upstream: FakeOpenAI):
    client.messages.create(
        model="chat",
        max_tokens=50,
        system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        messages=USER,
        stop_sequences=["zzz"],
        metadata={"user_id": "u-42"},
        # This SDK release has no sampling parameters of its own; older ones and raw clients do.
        extra_body={"temperature": 0.3, "top_p": 0.8, "top_k": 20},
    )
    sent = fake_upstream.last_request.json
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert (sent["temperature"], sent["top_p"], sent["stop"]) == (0.3, 0.8, ["zzz"])
    assert sent["user"] == "u-42"
    # An Anthropic-dialect field means nothing to an OpenAI-compatible upstream, which would
    # reject it as unknown: it is not sent there (an Anthropic upstream receives it).
    assert "top_k" not in sent


def test_multi_turn(client: anthropic.Anthropic, fake_upstream: FakeOpenAI):
    message = client.messages.create(
        model="chat",
        max_tokens=64,
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": [{"type": "text", "text": "echo: first"}]},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ],
    )
    assert _text(message.content[0]) == "echo: second"
    roles = [m["role"] for m in fake_upstream.last_request.json["messages"]]
    assert roles == ["user", "assistant", "user"]


def test_tool_use_round_trip(client: anthropic.Anthropic, fake_upstream: FakeOpenAI):
    first = client.messages.create(
        model="chat", max_tokens=64, messages=USER, tools=[WEATHER], tool_choice={"type": "any"}
    )
    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input, dict)
    assert isinstance(call.input["city"], str)
    assert fake_upstream.last_request.json["tool_choice"] == "required"
    second = client.messages.create(
        model="chat",
        max_tokens=64,
        tools=[WEATHER],
        messages=[
            *USER,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "22C"}],
            },
        ],
    )
    assert _text(second.content[0]) == "tool said: 22C"
    assert second.stop_reason == "end_turn"
    upstream = fake_upstream.last_request.json["messages"]
    assert upstream[1]["tool_calls"][0]["id"] == call.id
    assert upstream[2] == {"role": "tool", "content": "22C", "tool_call_id": call.id}


def test_streaming_text_with_final_usage(client: anthropic.Anthropic):
    with client.messages.stream(model="chat", max_tokens=64, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hello there"
    assert _text(final.content[0]) == text and final.model == "chat"
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0


def test_streaming_event_sequence(client: anthropic.Anthropic):
    events = list(client.messages.create(model="chat", max_tokens=64, messages=USER, stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds[1] == "content_block_start" and "content_block_stop" in kinds
    assert {e.delta.type for e in events if e.type == "content_block_delta"} == {"text_delta"}


def test_streaming_tool_input_is_reassembled(client: anthropic.Anthropic):
    with client.messages.stream(
        model="chat", max_tokens=64, messages=USER, tools=[WEATHER]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    (call,) = final.content
    assert call.type == "tool_use" and call.name == "get_weather"
    assert set(call.input) == {"city"} and isinstance(call.input["city"], str)


def test_image_reaches_the_upstream_as_an_image_url_part(
    client: anthropic.Anthropic, fake_upstream: FakeOpenAI
):
    message = client.messages.create(
        model="chat",
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "text", "text": "what is it?"},
                ],
            }
        ],
    )
    assert _text(message.content[0]) == "echo: what is it?"
    content = fake_upstream.last_request.json["messages"][0]["content"]
    assert content[0] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert content[1] == {"type": "text", "text": "what is it?"}


def test_count_tokens(client: anthropic.Anthropic):
    short = client.messages.count_tokens(model="chat", messages=USER)
    longer = client.messages.count_tokens(
        model="chat", system="a long system prompt " * 20, messages=USER, tools=[WEATHER]
    )
    assert 0 < short.input_tokens < longer.input_tokens
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="nope", messages=USER)


def test_bad_request_names_the_field(client: anthropic.Anthropic):
    image: ImageBlockParam = {
        "type": "image",
        # Deliberately a media type the API refuses (the SDK's type admits only the taken ones).
        "source": {"type": "base64", "media_type": "image/bmp", "data": PNG},  # type: ignore[typeddict-item]
    }
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model="chat",
            max_tokens=64,
            messages=[
                *USER,
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [image]},
            ],
        )
    err = info.value
    assert err.type == "invalid_request_error"
    assert err.api_message is not None
    assert err.api_message.startswith("messages[2].content[0].source.media_type:")
    assert isinstance(err.body, dict)  # the SDK types a parsed body as object
    assert err.request_id and err.body["request_id"] == err.request_id


def test_unknown_model_is_not_found(client: anthropic.Anthropic):
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="nope", max_tokens=8, messages=USER)
    assert info.value.type == "not_found_error"
    assert "chat" in (info.value.api_message or "")


def test_upstream_rate_limit_keeps_retry_after(client: anthropic.Anthropic):
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="fail-429", max_tokens=8, messages=USER)
    assert info.value.type == "rate_limit_error"
    assert info.value.response.headers["retry-after"] == "2"


def test_upstream_failure_is_a_server_error(client: anthropic.Anthropic):
    with pytest.raises(anthropic.InternalServerError) as info:
        client.messages.create(model="fail-500", max_tokens=8, messages=USER)
    assert info.value.status_code == 502 and info.value.type == "api_error"


def test_overloaded_upstream(client: anthropic.Anthropic):
    with pytest.raises(anthropic.ServiceUnavailableError) as info:
        client.messages.create(model="fail-503", max_tokens=8, messages=USER)
    assert info.value.type == "overloaded_error"


def test_first_token_timeout(client: anthropic.Anthropic):
    with pytest.raises(anthropic.GatewayTimeoutError) as info:
        client.messages.create(model="stalled", max_tokens=8, messages=USER, stream=True)
    assert info.value.type == "timeout_error"


def test_body_over_the_limit(client: anthropic.Anthropic):
    with pytest.raises(anthropic.ContentTooLargeError) as info:
        client.messages.create(
            model="chat", max_tokens=8, messages=[{"role": "user", "content": "x" * 70_000}]
        )
    # Read as str: the SDK's ErrorType literal lacks the 413 type the API sends.
    error_type: str | None = info.value.type
    assert error_type == "request_too_large"


def test_authentication(gateway_url: str):
    wrong = anthropic.Anthropic(base_url=gateway_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        wrong.messages.create(model="chat", max_tokens=8, messages=USER)
    assert info.value.type == "authentication_error"
    bearer = anthropic.Anthropic(base_url=gateway_url, auth_token=GATEWAY_KEY, max_retries=0)
    assert bearer.messages.count_tokens(model="chat", messages=USER).input_tokens > 0


def test_failure_mid_stream_is_an_error_event(client: anthropic.Anthropic):
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(model="drop-mid-stream", max_tokens=64, messages=USER) as stream,
    ):
        for text in stream.text_stream:
            received.append(text)
    assert "".join(received).startswith("echo:")  # the stream had started before it broke
    err = info.value
    assert err.type == "api_error" and err.api_message
    assert (
        isinstance(err.body, dict) and err.body["request_id"] == err.response.headers["request-id"]
    )
