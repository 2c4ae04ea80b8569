"""``modelyard chat``: one prompt or an interactive chat, streamed to the terminal.

A refusal (the model declining: OpenAI's ``refusal``, ``core.events.RefusalDelta``) is written
to stdout like an answer, on a line of its own that starts ``[refused] ``: it is the model's
reply to the prompt, so it stays in the transcript in its place, and the tag keeps a script
that reads stdout from taking it for an answer. An answer stopped for its content (finish reason
``content_filter``: an upstream's filter or a guardrail, or a refusal that a dialect without
one explained as text) is followed by a note on stderr, which says something about the answer
rather than being part of it.
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
from modelyard.cli.client import auth_headers
from modelyard.config import ConfigError, config_path_from_env, load_settings
from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import ModelyardError
from modelyard.core.events import Finished, RefusalDelta, TextDelta
from modelyard.providers.sse import SSEDecoder

REFUSED = "[refused] "
STOPPED = "[stopped for its content: by a content filter or guardrail, or the model refused]"
# What ``stream`` yields: ("text" | "refusal", a piece), or ("finish", the reason).
Piece = tuple[str, str]


class Reply:
    """One answer as the terminal gets it (see the module docstring), and as the history
    keeps it."""

    __slots__ = ("refusal", "stopped", "text")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.stopped: str | None = None

    def write(self, kind: str, piece: str) -> None:
        if kind == "finish":
            self.stopped = piece
            return
        if kind == "refusal":
            if not self.refusal:
                sys.stdout.write("\n" + REFUSED if self.text else REFUSED)
            self.refusal.append(piece)
        else:
            self.text.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()

    def end(self) -> None:
        sys.stdout.write("\n")
        sys.stdout.flush()
        if self.stopped == "content_filter":
            print(STOPPED, file=sys.stderr)

    def turn(self) -> dict[str, Any]:
        """The assistant's turn to send back: a refusal as ``refusal``, as OpenAI's API has it."""
        text = "".join(self.text)
        if not self.refusal:
            return {"role": "assistant", "content": text}
        return {"role": "assistant", "content": text or None, "refusal": "".join(self.refusal)}


def run_chat(args: argparse.Namespace) -> int:
    if args.responses or args.previous:
        from modelyard.cli.chat_responses import run_responses_chat

        return run_responses_chat(args)
    history: list[dict[str, Any]] = []
    if args.system:
        history.append({"role": "system", "content": args.system})
    try:
        if args.prompt:
            return asyncio.run(_turns(args, history, [args.prompt]))
        return asyncio.run(_turns(args, history, None))
    except KeyboardInterrupt:
        return flags.INTERRUPTED


async def _turns(
    args: argparse.Namespace, history: list[dict[str, Any]], prompts: list[str] | None
) -> int:
    async with _Backend.open(args) as backend:
        while True:
            prompt = prompts.pop(0) if prompts else (None if prompts is not None else _ask())
            if prompt is None:
                return 0
            history.append({"role": "user", "content": prompt})
            reply = Reply()
            try:
                async for kind, piece in backend.stream(history):
                    reply.write(kind, piece)
            except (ModelyardError, aiohttp.ClientError, OSError) as exc:
                print(f"\nerror: {exc}", file=sys.stderr)
                return 1
            reply.end()
            history.append(reply.turn())


def _ask() -> str | None:
    try:
        line = input("you> ")
    except EOFError:
        return None
    return None if line.strip() in ("/exit", "/quit") else line


class _Backend:
    """Either a running server over HTTP, or the gateway in this very process."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._session: aiohttp.ClientSession | None = None
        self._inproc: Any = None

    @classmethod
    def open(cls, args: argparse.Namespace) -> _BackendContext:
        return _BackendContext(cls(args))

    def _body(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.args.model, "messages": history, "stream": True}
        if self.args.max_tokens is not None:
            body["max_tokens"] = self.args.max_tokens
        if self.args.temperature is not None:
            body["temperature"] = self.args.temperature
        return body

    async def stream(self, history: list[dict[str, Any]]) -> AsyncIterator[Piece]:
        if self._inproc is not None:
            async for piece in self._inproc.stream(self._body(history)):
                yield piece
            return
        assert self._session is not None
        url = f"{self.args.url.rstrip('/')}/v1/chat/completions"
        headers = {"content-type": "application/json", **auth_headers(self.args.api_key)}
        async with self._session.post(
            url, data=orjson.dumps(self._body(history)), headers=headers
        ) as resp:
            if resp.status >= 400:
                err = orjson.loads(await resp.read()).get("error", {})
                raise ModelyardError(f"HTTP {resp.status}: {err.get('message')}")
            decoder = SSEDecoder()
            async for chunk in resp.content.iter_any():
                for event in decoder.feed(chunk):
                    for piece in _pieces_of(event.data):
                        yield piece


def _pieces_of(data: str) -> list[Piece]:
    """A chunk's text, refusal and finish reason (the first choice's), as ``stream`` yields."""
    if data == "[DONE]":
        return []
    parsed = orjson.loads(data)
    if "error" in parsed:
        raise ModelyardError(str(parsed["error"].get("message")))
    choices = parsed.get("choices") or []
    if not choices:
        return []
    delta = choices[0].get("delta") or {}
    pieces: list[Piece] = []
    if delta.get("content"):
        pieces.append(("text", str(delta["content"])))
    if delta.get("refusal"):
        pieces.append(("refusal", str(delta["refusal"])))
    if choices[0].get("finish_reason"):
        pieces.append(("finish", str(choices[0]["finish_reason"])))
    return pieces


class _InProcess:
    def __init__(self, args: argparse.Namespace) -> None:
        from modelyard.cli.serve import _start_local
        from modelyard.services.gateway import Gateway
        from modelyard.services.root import standalone_pipeline

        settings = load_settings(config_path_from_env(args.config))
        self.runtime = _start_local(settings)
        self.gateway = Gateway(settings, self.runtime.base_url if self.runtime else None)
        self.pipeline = standalone_pipeline(self.gateway)

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[Piece]:
        request = ChatRequest(
            model=body["model"],
            messages=[
                Message(
                    role=m["role"],
                    content=(TextPart(m["content"]),) if m["content"] else (),
                    refusal=m.get("refusal"),
                )
                for m in body["messages"]
            ],
            stream=True,
            max_tokens=body.get("max_tokens"),
            temperature=body.get("temperature"),
        )
        from modelyard.services.pipeline import Caller
        from modelyard.tenancy.keys import Principal

        caller = Caller(Principal(None, anonymous=True), "cli", "cli", metered=False)
        opened = await self.pipeline.stream(caller, request)
        async for event in opened.events:
            if isinstance(event, TextDelta):
                yield "text", event.text
            elif isinstance(event, RefusalDelta):
                yield "refusal", event.text
            elif isinstance(event, Finished) and event.index == 0:
                yield "finish", event.reason

    async def close(self) -> None:
        await self.gateway.aclose()
        if self.runtime is not None:
            self.runtime.stop()


class _BackendContext:
    def __init__(self, backend: _Backend) -> None:
        self.backend = backend

    async def __aenter__(self) -> _Backend:
        if self.backend.args.in_process:
            try:
                self.backend._inproc = _InProcess(self.backend.args)
            except ConfigError as exc:
                raise SystemExit(flags.config_error(exc)) from exc
        else:
            self.backend._session = aiohttp.ClientSession()
        return self.backend

    async def __aexit__(self, *exc: object) -> None:
        if self.backend._session is not None:
            await self.backend._session.close()
        if self.backend._inproc is not None:
            await self.backend._inproc.close()
