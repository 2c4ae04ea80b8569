"""The Gemini dialect through the real app and the official ``google-genai`` SDK (pointed at the
gateway with ``http_options={"base_url", "api_version"}``), on an OpenAI-format, an
Anthropic-format and a Gemini-format deployment, under ``/v1beta`` and ``/v1``.

The upstream fakes record what they receive, so the tests assert what was forwarded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from modelyard.config.loader import settings_from_data
from modelyard.server.app import create_app
from tests.fakes.openai_chat import REFUSAL
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server
from tests.integration.test_anthropic_api import _serve
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

GATEWAY_KEY = "sk-gateway-gemini-api-test"
CHAT = ("chat-oa", "chat-an", "chat-gm")
VERSIONS = ("v1beta", "v1")
RUN_TOOL = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters_json_schema={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


def _config(openai: FakeOpenAI, vendors: dict[str, Any]) -> dict[str, object]:
    def up(kind: str, base_url: str) -> dict[str, str]:
        return {"type": kind, "base_url": base_url, "api_key": UPSTREAM_KEY}

    once = {"attempts": 1}
    return {
        "server": {"api_keys": [GATEWAY_KEY], "max_body_bytes": 64 * 1024},
        "local": {"enabled": False},
        "providers": {
            "oa": up("openai_compatible", openai.base_url),
            "an": up("anthropic", vendors["anthropic"].base_url),
            "gm": up("gemini", vendors["gemini"].base_url),
        },
        "deployments": {
            "chat-oa": {"targets": [{"provider": "oa", "model": "gpt-4o-mini"}]},
            "chat-an": {"targets": [{"provider": "an", "model": "claude-sonnet-4-5"}]},
            "chat-gm": {"targets": [{"provider": "gm", "model": "gemini-2.5-flash"}]},
            "chat-gm3": {"targets": [{"provider": "gm", "model": "gemini-3-pro-preview"}]},
            "embed-oa": {"targets": [{"provider": "oa", "model": "text-embedding-3-small"}]},
            "embed-gm": {"targets": [{"provider": "gm", "model": "gemini-embedding-001"}]},
            "busy": {"targets": [{"provider": "oa", "model": "fail-429"}], "retry": once},
        },
    }


@pytest.fixture(scope="module")
def gateway_url(fake_upstream: FakeOpenAI, vendor_fakes: dict[str, Any]) -> Iterator[str]:
    app = create_app(settings_from_data(_config(fake_upstream, vendor_fakes)))
    with _serve(app) as url:
        yield url


def _client(url: str, version: str = "v1beta", key: str = GATEWAY_KEY) -> genai.Client:
    options = types.HttpOptions(base_url=url, api_version=version, timeout=30_000)
    return genai.Client(api_key=key, http_options=options)


@pytest.fixture(scope="module", params=VERSIONS)
def client(request: pytest.FixtureRequest, gateway_url: str) -> genai.Client:
    return _client(gateway_url, request.param)


def _sent(deployment: str, openai: FakeOpenAI, vendors: dict[str, Any]) -> dict[str, Any]:
    fake = {"chat-oa": openai, "chat-an": vendors["anthropic"]}.get(deployment, vendors["gemini"])
    body: dict[str, Any] = fake.last_request.json
    return body


@pytest.mark.parametrize("deployment", CHAT)
def test_generate_content(
    client: genai.Client, deployment: str, fake_upstream: FakeOpenAI, vendor_fakes: dict[str, Any]
):
    config = types.GenerateContentConfig(
        system_instruction="be brief", temperature=0.3, max_output_tokens=60, stop_sequences=["zz"]
    )
    response = client.models.generate_content(
        model=deployment, contents="hello there", config=config
    )
    assert response.text == "echo: hello there"
    (candidate,) = response.candidates or []
    assert candidate.finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert response.model_version == deployment and response.response_id
    sent = _sent(deployment, fake_upstream, vendor_fakes)
    if deployment == "chat-oa":
        assert sent["messages"][0] == {"role": "system", "content": "be brief"}
        assert (sent["temperature"], sent["max_tokens"], sent["stop"]) == (0.3, 60, ["zz"])
    elif deployment == "chat-an":
        assert sent["system"] in ("be brief", [{"type": "text", "text": "be brief"}])
        assert (sent["temperature"], sent["max_tokens"]) == (0.3, 60)
    else:
        assert sent["systemInstruction"] == {"parts": [{"text": "be brief"}]}
        assert sent["generationConfig"]["maxOutputTokens"] == 60


@pytest.mark.parametrize("deployment", CHAT)
def test_stream(client: genai.Client, deployment: str):
    chunks = list(client.models.generate_content_stream(model=deployment, contents="hi stream"))
    assert "".join(c.text or "" for c in chunks) == "echo: hi stream"
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None and last.usage_metadata.total_token_count


@pytest.mark.parametrize("deployment", CHAT)
def test_count_tokens(client: genai.Client, deployment: str):
    short = client.models.count_tokens(model=deployment, contents="hello")
    long = client.models.count_tokens(model=deployment, contents="hello " * 200)
    assert short.total_tokens is not None and long.total_tokens is not None
    assert 0 < short.total_tokens < long.total_tokens


@pytest.mark.parametrize("deployment", ["embed-oa", "embed-gm"])
def test_embed_content(client: genai.Client, deployment: str, vendor_fakes: dict[str, Any]):
    result = client.models.embed_content(model=deployment, contents=["alpha", "beta"])
    vectors = [e.values for e in result.embeddings or []]
    assert len(vectors) == 2 and all(vectors)
    assert vectors[0] != vectors[1]
    if deployment == "embed-gm":
        sent = vendor_fakes["gemini"].last_request.json
        assert [r["content"] for r in sent["requests"]] == [
            {"parts": [{"text": "alpha"}]},
            {"parts": [{"text": "beta"}]},
        ]


def test_models_list_and_get(client: genai.Client):
    names = [m.name for m in client.models.list()]
    assert {"models/chat-oa", "models/chat-an", "models/chat-gm"} <= set(names)
    model = client.models.get(model="chat-gm")
    assert model.name == "models/chat-gm" and model.display_name == "chat-gm"
    assert model.supported_actions and "generateContent" in model.supported_actions


@pytest.mark.parametrize("deployment", [*CHAT, "chat-gm3"])
def test_function_calling_round_trip(client: genai.Client, deployment: str):
    tools = [types.Tool(function_declarations=[RUN_TOOL])]
    config = types.GenerateContentConfig(
        tools=tools,
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY
            )
        ),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    user = types.Content(role="user", parts=[types.Part(text="weather in Paris?")])
    first = client.models.generate_content(model=deployment, contents=[user], config=config)
    (call,) = first.function_calls or []
    assert call.name == "get_weather" and isinstance((call.args or {}).get("city"), str)
    assert call.id
    answer = types.Part.from_function_response(name="get_weather", response={"output": "22C"})
    assert answer.function_response is not None
    answer.function_response.id = call.id
    model_turn = (first.candidates or [])[0].content
    assert model_turn is not None
    history = [user, model_turn, types.Content(role="user", parts=[answer])]
    auto = types.GenerateContentConfig(tools=tools)
    second = client.models.generate_content(model=deployment, contents=history, config=auto)
    assert second.text == "tool said: 22C"


def test_json_schema_output(client: genai.Client, fake_upstream: FakeOpenAI):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=schema
    )
    client.models.generate_content(model="chat-oa", contents="json please", config=config)
    sent = fake_upstream.last_request.json["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == schema


def test_gemini_tools_pass_to_gemini_and_are_refused_elsewhere(
    client: genai.Client, vendor_fakes: dict[str, Any]
):
    config = types.GenerateContentConfig(
        tools=[types.Tool(google_search=types.GoogleSearch())],
        safety_settings=[
            types.SafetySetting(
                category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                threshold=types.HarmBlockThreshold.BLOCK_NONE,
            )
        ],
    )
    client.models.generate_content(model="chat-gm", contents="search", config=config)
    sent = vendor_fakes["gemini"].last_request.json
    assert sent["tools"] == [{"googleSearch": {}}]
    assert sent["safetySettings"] == [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
    ]
    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.generate_content(model="chat-oa", contents="search", config=config)
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert "gemini_tools" in (caught.value.message or "")


def test_errors_in_googles_shape(gateway_url: str):
    client = _client(gateway_url)
    with pytest.raises(genai_errors.ClientError) as missing:
        client.models.generate_content(model="no-such-deployment", contents="x")
    assert (missing.value.code, missing.value.status) == (404, "NOT_FOUND")
    with pytest.raises(genai_errors.ClientError) as refused:
        config = types.GenerateContentConfig(response_modalities=["IMAGE"])
        client.models.generate_content(model="chat-oa", contents="x", config=config)
    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    assert "generationConfig.responseModalities" in (refused.value.message or "")
    with pytest.raises(genai_errors.ClientError) as busy:
        client.models.generate_content(model="busy", contents="x")
    assert (busy.value.code, busy.value.status) == (429, "RESOURCE_EXHAUSTED")
    stranger = _client(gateway_url, key="sk-wrong-key")
    with pytest.raises(genai_errors.ClientError) as unknown:
        stranger.models.generate_content(model="chat-oa", contents="x")
    assert (unknown.value.code, unknown.value.status) == (401, "UNAUTHENTICATED")


@pytest.fixture(scope="module")
def served(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """The gateway as ``modelyard serve`` runs it, with its own logging set-up."""
    config = {
        "server": {"api_keys": [GATEWAY_KEY]},
        "local": {"enabled": False},
        "providers": {
            "oa": {
                "type": "openai_compatible",
                "base_url": fake_upstream.base_url,
                "api_key": "env::K",
            }
        },
        "deployments": {"chat-oa": {"targets": [{"provider": "oa", "model": "gpt-4o-mini"}]}},
    }
    with run_server(
        tmp_path_factory.mktemp("gemini-served"), config, env={"K": UPSTREAM_KEY}
    ) as server:
        yield server


def test_key_in_the_query_string_is_accepted_and_never_logged(served: RunningServer):
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    url = f"{served.url}/v1beta/models/chat-oa:generateContent"
    ok = httpx.post(url, params={"key": GATEWAY_KEY}, json=body, timeout=30)
    bad = httpx.post(url, params={"key": "sk-not-ours-secret"}, json=body, timeout=30)
    assert ok.status_code == 200, ok.text
    assert bad.status_code == 401 and "sk-not-ours-secret" not in bad.text
    assert bad.json()["error"]["status"] == "UNAUTHENTICATED"
    path = "/v1beta/models/chat-oa:generateContent"
    # The access log writes its lines in batches (server/access_log.py): wait for both.
    wait_until(lambda: served.log().count(f" {path} ") >= 2, "both requests' access lines")
    log = served.log()
    assert GATEWAY_KEY not in log and "sk-not-ours-secret" not in log


def test_json_array_stream_without_alt_sse(gateway_url: str):
    body = {"contents": [{"parts": [{"text": "hi array"}]}]}
    url = f"{gateway_url}/v1beta/models/models/chat-oa:streamGenerateContent"
    response = httpx.post(url, headers={"x-goog-api-key": GATEWAY_KEY}, json=body, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    chunks = orjson.loads(response.content)
    text = "".join(
        p.get("text", "")
        for c in chunks
        for p in c["candidates"][0].get("content", {}).get("parts", [])
    )
    assert text == "echo: hi array"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_v1_models_listing_follows_the_clients_dialect(gateway_url: str):
    gemini = httpx.get(f"{gateway_url}/v1/models", headers={"x-goog-api-key": GATEWAY_KEY})
    assert "models/chat-oa" in [m["name"] for m in gemini.json()["models"]]
    by_query = httpx.get(f"{gateway_url}/v1/models/chat-oa", params={"key": GATEWAY_KEY})
    assert by_query.json()["name"] == "models/chat-oa"
    openai = httpx.get(
        f"{gateway_url}/v1/models", headers={"authorization": f"Bearer {GATEWAY_KEY}"}
    )
    assert openai.json()["object"] == "list"


def test_a_refusal_reaches_a_gemini_client_as_its_text(client: genai.Client):
    """Gemini has no refusal field, nor a finish reason for a model that declines: an OpenAI
    upstream's refusal is the answer's text, with the upstream's ``stop`` as ``STOP``."""
    response = client.models.generate_content(model="chat-oa", contents="please refuse this")
    assert response.text == REFUSAL
    (candidate,) = response.candidates or []
    assert candidate.finish_reason == types.FinishReason.STOP


def test_a_streamed_refusal_reaches_a_gemini_client_as_its_text(client: genai.Client):
    chunks = list(client.models.generate_content_stream(model="chat-oa", contents="please refuse"))
    assert "".join(c.text or "" for c in chunks) == REFUSAL
    finishes = [c.candidates[0].finish_reason for c in chunks if c.candidates]
    assert finishes[-1] == types.FinishReason.STOP
