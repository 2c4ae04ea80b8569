"""A request's fit to a deployment's targets by their catalog facts: what the request asks
(images, PDF documents, the size of its prompt) is read from its messages once per request,
not once per target and fact, and the refusal names what the first target cannot do."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.config.loader import settings_from_data
from modelyard.core.chat import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    TextPart,
    estimate_prompt_tokens,
)
from modelyard.core.errors import UnsupportedCapability
from modelyard.providers.base import CallContext
from modelyard.services.chat import ChatService, _Asks
from modelyard.services.gateway import Gateway

# gpt-3.5-turbo's shipped facts: no images, text input only (no PDF), a 16,385-token context.
TEXT_ONLY = "gpt-3.5-turbo"


class _Walked(list[Message]):
    """Messages that count the passes made over them."""

    passes = 0

    def __iter__(self) -> Any:
        self.passes += 1
        return super().__iter__()


def _gateway(targets: int) -> Gateway:
    settings = {
        "local": {"enabled": False},
        "providers": {
            f"p{i}": {"type": "openai", "api_key": "sk-test", "base_url": "http://127.0.0.1:9/v1"}
            for i in range(targets)
        },
        "deployments": {
            "chat": {"targets": [{"provider": f"p{i}", "model": TEXT_ONLY} for i in range(targets)]}
        },
    }
    return Gateway(settings_from_data(settings), None)


async def _refused(gateway: Gateway, request: ChatRequest) -> UnsupportedCapability:
    """The refusal of ``request`` by deployment ``chat`` (the gateway closed after)."""
    try:
        with pytest.raises(UnsupportedCapability) as refused:
            await ChatService(gateway).complete(
                gateway.table.resolve("chat"), request, CallContext("r1")
            )
    finally:
        await gateway.aclose()
    return refused.value


@pytest.mark.parametrize("targets", [1, 3])
async def test_the_messages_are_read_once_whatever_the_targets(targets: int) -> None:
    gateway = _gateway(targets)
    messages = _Walked(
        [Message("user", (TextPart("x" * 70_000),)), Message("user", (TextPart("y"),))]
    )
    request = ChatRequest("chat", messages)
    refused = await _refused(gateway, request)
    # Before, every target walked them for images, for PDFs and for the prompt's size.
    assert messages.passes == 1
    assert refused.message == (
        "model 'chat' does not support a prompt of about 17500 tokens (context 16385)"
    )
    assert refused.param == "messages"


@pytest.mark.parametrize(
    ("part", "capability"),
    [
        (ImagePart("https://example.com/a.png"), "image input"),
        (DocumentPart("application/pdf", data="JVBERi0="), "PDF documents"),
    ],
)
async def test_the_first_thing_a_target_cannot_do_is_named(part: Any, capability: str) -> None:
    gateway = _gateway(2)
    request = ChatRequest("chat", [Message("user", (TextPart("look"), part))])
    refused = await _refused(gateway, request)
    assert refused.message == f"model 'chat' does not support {capability}"


@pytest.mark.parametrize(
    "content",
    [
        (TextPart("hello there"),),
        (TextPart("a" * 41), ImagePart("data:image/png;base64,iVBOR")),
        (DocumentPart("text/plain", text="read as text"), TextPart("b" * 9)),
        (DocumentPart("application/pdf", url="https://example.com/a.pdf"),),
        (),
    ],
)
def test_what_a_request_asks_is_what_the_request_says(content: tuple[Any, ...]) -> None:
    request = ChatRequest("m", [Message("system", (TextPart("s" * 7),)), Message("user", content)])
    asks = _Asks(request, lambda _target: pytest.fail("no target is resolved")).read()
    assert (asks.images, asks.pdf, asks.prompt_tokens) == (
        request.has_images(),
        request.has_pdf_documents(),
        estimate_prompt_tokens(request),
    )
