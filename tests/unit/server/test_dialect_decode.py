"""A dialect says in one place how its body becomes a ``ChatRequest``: from the body alone
(OpenAI, Anthropic) or given the request too (Gemini, whose URL names the model and the method),
never both and never neither; no dialect keeps a placeholder decoder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from modelyard.config.schema import Settings
from modelyard.core.chat import ChatRequest
from modelyard.protocols.openai.decode import decode_chat
from modelyard.server import anthropic_routes, gemini_routes, openai_routes
from modelyard.server.app import create_app
from modelyard.server.chat_route import Dialect
from tests.fakes.openai_upstream import FakeOpenAI

KEY = "sk-dialect-decode-0123456789"
CONTENTS = [{"role": "user", "parts": [{"text": "hello"}]}]


def _dialect(**decoders: Any) -> Dialect:
    return Dialect(
        path="/test",
        encode_result=lambda _result, _model: b"",
        stream_writer=openai_routes.DIALECT.stream_writer,
        error_body=openai_routes.DIALECT.error_body,
        error_frame=openai_routes.DIALECT.error_frame,
        **decoders,
    )


def _with_request(_request: Any, body: Any) -> ChatRequest:
    return decode_chat(body)


def test_a_dialect_needs_exactly_one_decoder() -> None:
    with pytest.raises(ValueError, match="dialect /test: give one of decode and decode_request"):
        _dialect()
    with pytest.raises(ValueError, match="dialect /test"):
        _dialect(decode=decode_chat, decode_request=_with_request)
    assert _dialect(decode=decode_chat).decode_request is None
    assert _dialect(decode_request=_with_request).decode is None


@pytest.mark.parametrize(
    "dialect",
    [openai_routes.DIALECT, openai_routes.COMPLETIONS, anthropic_routes.DIALECT],
    ids=["chat", "completions", "messages"],
)
def test_the_hot_dialects_decode_from_the_body_alone(dialect: Dialect) -> None:
    assert dialect.decode is not None and dialect.decode_request is None


@pytest.mark.parametrize(
    "dialect", [gemini_routes.DIALECT, gemini_routes._ARRAY], ids=["sse", "array"]
)
def test_gemini_decodes_with_its_url_and_has_no_body_only_decoder(dialect: Dialect) -> None:
    assert dialect.decode is None and dialect.decode_request is not None


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def client(fake: FakeOpenAI) -> Iterator[TestClient]:
    settings = Settings.model_validate(
        {
            "server": {"api_keys": [KEY]},
            "local": {"enabled": False},
            "providers": {
                "fake": {"type": "openai_compatible", "base_url": fake.base_url, "api_key": KEY}
            },
            "deployments": {"chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]}},
        }
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_a_gemini_request_is_decoded_with_the_model_and_method_of_its_url(
    client: TestClient, fake: FakeOpenAI, version: str
) -> None:
    headers = {gemini_routes.KEY_HEADER: KEY}
    body = {"contents": CONTENTS}
    fake.clear()
    answer = client.post(f"/{version}/models/chat:generateContent", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["candidates"][0]["content"]["role"] == "model"
    sent = fake.last_request.json
    assert sent["model"] == "gpt-4o-mini" and not sent.get("stream")

    streamed = client.post(
        f"/{version}/models/models/chat:streamGenerateContent", json=body, headers=headers
    )
    assert streamed.status_code == 200, streamed.text
    assert streamed.headers["content-type"] == "application/json"  # no alt=sse: one array
    chunks = orjson.loads(streamed.content)
    assert isinstance(chunks, list) and chunks
    assert fake.last_request.json["stream"] is True


def test_an_unknown_gemini_model_in_the_url_is_a_404_in_gemini_shape(client: TestClient) -> None:
    answer = client.post(
        "/v1beta/models/nowhere:generateContent",
        json={"contents": CONTENTS},
        headers={gemini_routes.KEY_HEADER: KEY},
    )
    assert answer.status_code == 404, answer.text
    error = answer.json()["error"]
    assert error["code"] == 404 and error["status"] == "NOT_FOUND"
    assert "nowhere" in error["message"]
