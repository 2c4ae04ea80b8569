"""The provider plugin example in docs/plugins.md works as printed: loaded through the entry
point mechanism, called for a whole answer, a stream and an error."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web

from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import InvalidRequest
from modelyard.core.events import Finished, TextDelta
from modelyard.providers.base import CallContext, ProviderSettings
from modelyard.providers.registry import check_settings, provider_types
from modelyard.providers.transport import Transport

DOC = Path(__file__).parents[3] / "docs" / "plugins.md"


def _example() -> ModuleType:
    block = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0]
    module = ModuleType("acme_gw_adapter")
    exec(compile(block, str(DOC), "exec"), module.__dict__)  # our own docs
    return module


class _Entry:
    name = "acme"
    value = "acme_gw.adapter:AcmeProvider"

    def __init__(self, target: object) -> None:
        self._target = target

    def load(self) -> object:
        return self._target


@pytest.fixture
async def acme() -> AsyncIterator[str]:
    async def complete(request: web.Request) -> web.Response:
        body = await request.json()
        if body["prompt"] == "fail":
            return web.Response(status=422, text="prompt refused")
        return web.json_response({"text": f"echo {body['prompt']}"})

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: hel\n\ndata: lo\n\ndata: [END]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/complete", complete)
    app.router.add_post("/v1/stream", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def test_the_documented_provider_plugin_works(acme: str) -> None:
    known = provider_types(entries=[_Entry(_example().AcmeProvider)])
    settings = ProviderSettings(
        "acme", "acme", base_url=acme, api_key="k", options={"region": "us"}
    )
    assert check_settings(settings, known) is None
    assert check_settings(ProviderSettings("acme", "acme", api_key="k", options={"x": 1}), known)
    transport = Transport()
    try:
        provider: Any = known["acme"](settings, transport)
        ask = ChatRequest("m", [Message("user", (TextPart("hi"),))])
        result = await provider.chat(ask, "m", CallContext("r"))
        assert result.choices[0].message.text() == "echo hi"
        events = [e async for e in provider.stream(ask, "m", CallContext("r"))]
        assert events == [TextDelta("hel"), TextDelta("lo"), Finished("stop")]
        refused = ChatRequest("m", [Message("user", (TextPart("fail"),))])
        with pytest.raises(InvalidRequest, match="prompt refused"):
            await provider.chat(refused, "m", CallContext("r"))
    finally:
        await transport.aclose()
