"""Estimate a request's input tokens for ``POST /v1/messages/count_tokens``.

This is an estimate, not a count: no target is asked (the provider interface has no counting
call, and asking an upstream would cost a round trip and sometimes money), and tokenizers differ
by model. The rule is the common one for BPE tokenizers on English text, one token per four
characters, over everything the model reads: system and message text, reasoning, tool-call names
and arguments, tool results, and each tool's name, description and JSON schema. On top come
``MESSAGE_OVERHEAD`` tokens per message and ``TOOL_OVERHEAD`` per tool for the framing the
model's template adds, and ``IMAGE_TOKENS`` per image: the size above which the vendor's API
downscales an image, so the estimate is a ceiling for images. Expect roughly ±25 % on prose,
more on code and on non-Latin scripts; it suits budgeting and context-window checks, not
billing.
"""

from __future__ import annotations

import math

import orjson

from modelyard.core.chat import ChatRequest, DocumentPart, ImagePart, Message, TextPart

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
TOOL_OVERHEAD = 8
IMAGE_TOKENS = 1600


def estimate_input_tokens(request: ChatRequest) -> int:
    chars = 0
    images = 0
    for message in request.messages:
        text, pictures = _message_size(message)
        chars += text
        images += pictures
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description or "")
        if tool.parameters is not None:
            chars += len(orjson.dumps(dict(tool.parameters)))
    return (
        math.ceil(chars / CHARS_PER_TOKEN)
        + MESSAGE_OVERHEAD * len(request.messages)
        + TOOL_OVERHEAD * len(request.tools)
        + IMAGE_TOKENS * images
    )


def _message_size(message: Message) -> tuple[int, int]:
    """(characters of text, number of images) in one message."""
    chars = len(message.reasoning or "")
    images = 0
    for part in message.content:
        if isinstance(part, TextPart):
            chars += len(part.text)
        elif isinstance(part, ImagePart):
            images += 1
        elif isinstance(part, DocumentPart):
            chars += len(part.text or "")  # a PDF's size is unknown before the vendor reads it
    for call in message.tool_calls:
        chars += len(call.name) + len(call.arguments)
    return chars, images
