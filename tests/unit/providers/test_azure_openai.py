from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from modelyard.config import ConfigError
from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.providers.base import CallContext, ProviderSettings
from modelyard.providers.openai_compatible.azure import AzureOpenAIProvider
from modelyard.providers.transport import Transport
from modelyard.services.build import build_components

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi"},
            "finish_reason": "stop",
            "content_filter_results": {},
        }
    ],
    "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
}


@pytest.fixture
async def azure_server() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(
            {"path": request.path, "query": dict(request.query), "headers": request.headers}
        )
        return web.json_response(COMPLETION)

    app = web.Application()
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


@pytest.mark.parametrize(("auth", "header"), [("api-key", "api-key"), ("bearer", "authorization")])
async def test_deployment_url_version_and_auth(azure_server, auth, header):
    base, seen = azure_server
    settings = ProviderSettings(
        name="az", type="azure_openai", base_url=base, api_key="azkey", options={"auth": auth}
    )
    transport = Transport()
    provider = AzureOpenAIProvider(settings, transport)
    request = ChatRequest("dep", [Message("user", (TextPart("x"),))])
    result = await provider.chat(request, "my gpt deployment", CallContext("r1"))
    await transport.aclose()
    assert result.choices[0].message.text() == "hi"
    assert seen[0]["path"] == "/openai/deployments/my gpt deployment/chat/completions"
    assert seen[0]["query"] == {"api-version": "2024-10-21"}
    expected = "azkey" if auth == "api-key" else "Bearer azkey"
    assert seen[0]["headers"][header] == expected


def test_options_are_validated_with_paths():
    data = {
        "providers": {
            "az": {
                "type": "azure_openai",
                "base_url": "https://r.openai.azure.com",
                "api_key": "k",
                "options": {"auth": "magic"},
            },
            "plain": {"type": "xai", "api_key": "k", "options": {"api_version": "1"}},
        }
    }
    with pytest.raises(ConfigError) as info:
        build_components(settings_from_data(data), None)
    messages = [str(i) for i in info.value.issues]
    wrong_auth = "providers.az.options.auth: Input should be 'api-key' or 'bearer'; got 'magic'"
    assert wrong_auth in messages
    assert (
        "providers.plain.options.api_version: unknown option 'api_version'; accepted: none"
        in messages
    )
