"""``modelyard chat --responses``: a stored multi-turn conversation over the Responses API.

Each turn is ``POST /v1/responses`` (streamed) with the previous turn's id as
``previous_response_id``, so the server keeps the conversation and only the new prompt is sent.
The last response id is printed on stderr; ``--previous ID`` continues that conversation in a
later invocation. A refusal (the message's ``refusal`` part, streamed as
``response.refusal.delta``) is written as ``modelyard chat`` writes one (``cli.chat.Reply``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from modelyard.cli import flags
from modelyard.cli.chat import Piece, Reply
from modelyard.cli.client import auth_headers
from modelyard.core.errors import ModelyardError


def run_responses_chat(args: argparse.Namespace) -> int:
    if args.in_process:
        print("error: --responses needs a server (stored responses live there)", file=sys.stderr)
        return flags.USAGE
    try:
        return asyncio.run(_turns(args))
    except KeyboardInterrupt:
        return flags.INTERRUPTED


async def _turns(args: argparse.Namespace) -> int:
    previous: str | None = args.previous
    prompts = [args.prompt] if args.prompt else None
    async with aiohttp.ClientSession() as session:
        while True:
            prompt = prompts.pop(0) if prompts else (None if prompts is not None else _ask())
            if prompt is None:
                return 0
            turn, reply = _Turn(), Reply()
            try:
                async for kind, piece in turn.stream(session, args, _body(args, prompt, previous)):
                    reply.write(kind, piece)
            except (ModelyardError, aiohttp.ClientError, OSError) as exc:
                print(f"\nerror: {exc}", file=sys.stderr)
                return 1
            reply.end()
            previous = turn.response_id
            print(f"response: {previous}", file=sys.stderr)


def _ask() -> str | None:
    try:
        line = input("you> ")
    except EOFError:
        return None
    return None if line.strip() in ("/exit", "/quit") else line


def _body(args: argparse.Namespace, prompt: str, previous: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": args.model, "input": prompt, "stream": True}
    if previous:
        body["previous_response_id"] = previous
    if args.system:
        body["instructions"] = args.system  # not carried over: sent with every turn
    if args.max_tokens is not None:
        body["max_output_tokens"] = args.max_tokens
    if args.temperature is not None:
        body["temperature"] = args.temperature
    return body


class _Turn:
    """One streamed response: yields its text and refusal (``cli.chat.Piece``); ``response_id``
    once it has ended."""

    def __init__(self) -> None:
        self.response_id: str | None = None

    async def stream(
        self, session: aiohttp.ClientSession, args: argparse.Namespace, body: dict[str, Any]
    ) -> AsyncIterator[Piece]:
        url = f"{args.url.rstrip('/')}/v1/responses"
        headers = {"content-type": "application/json", **auth_headers(args.api_key)}
        async with session.post(url, data=orjson.dumps(body), headers=headers) as resp:
            if resp.status >= 400:
                err = orjson.loads(await resp.read()).get("error", {})
                raise ModelyardError(f"HTTP {resp.status}: {err.get('message')}")
            # Every event of this API is one ``data:`` line (JSON has no raw newlines); lines
            # are split here, as a final event can be longer than aiohttp's line limit.
            pending = b""
            async for chunk in resp.content.iter_any():
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    piece = self._event(orjson.loads(line[5:])) if line[:5] == b"data:" else None
                    if piece is not None and piece[1]:
                        yield piece

    def _event(self, event: dict[str, Any]) -> Piece | None:
        kind = event.get("type")
        if kind == "response.output_text.delta":
            return "text", str(event.get("delta") or "")
        if kind == "response.refusal.delta":
            return "refusal", str(event.get("delta") or "")
        if kind in ("response.completed", "response.incomplete"):
            self.response_id = event["response"]["id"]
            details = event["response"].get("incomplete_details") or {}
            return ("finish", str(details["reason"])) if details.get("reason") else None
        elif kind == "response.failed":
            error = event["response"].get("error") or {}
            raise ModelyardError(f"the response failed: {error.get('message')}")
        elif kind == "error":
            raise ModelyardError(str(event.get("message")))
        return None
