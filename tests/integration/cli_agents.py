"""What the tests of the coding-agent CLIs (Codex, Gemini CLI) share: a scripted model that
answers a plain task or drives one tool call, served by the OpenAI and Anthropic fakes, and the
headless run of a CLI.

The scripted model: after a tool result it answers ``TOOL-LOOP-DONE <result>``; when a user turn
holds ``marker`` it calls ``tool`` with ``arguments``; otherwise it answers ``PLAIN-TASK-DONE``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tests.fakes.anthropic_messages import Answer, Block
from tests.fakes.anthropic_stream import stream_events
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_chat import ChatAnswer, Choice, ToolCall, completion_body
from tests.fakes.openai_stream import stream_frames
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server

PLAIN_DONE = "PLAIN-TASK-DONE"
LOOP_DONE = "TOOL-LOOP-DONE"


def plain_text(content: Any) -> str:
    """The text of a message's content, whether a string or a list of blocks."""
    if isinstance(content, str):
        return content
    return " ".join(str(b.get("text", "")) for b in content or () if isinstance(b, dict))


async def _each(frames: list[bytes]) -> AsyncIterator[bytes]:
    for frame in frames:
        yield frame


@dataclass(frozen=True)
class ToolLoop:
    """The scripted model for upstream model name ``model``."""

    model: str
    tool: str
    arguments: Mapping[str, Any]
    marker: str = "RUN-THE-TOOL"

    def next_text(self, tool_result: str | None, user_texts: Sequence[str]) -> str | None:
        """The final text of the next turn, or None to call the tool."""
        if tool_result is not None:
            return f"{LOOP_DONE} {tool_result.strip()[:300]}"
        return None if any(self.marker in text for text in user_texts) else PLAIN_DONE

    async def openai(self, _request: Request, body: dict[str, Any]) -> Response:
        """A Chat Completions answer (streamed when asked)."""
        messages = body["messages"]
        last = messages[-1]
        result = plain_text(last.get("content")) if last["role"] == "tool" else None
        users = [plain_text(m.get("content")) for m in messages if m["role"] == "user"]
        text = self.next_text(result, users)
        calls = () if text else (ToolCall("call_1", self.tool, json.dumps(self.arguments)),)
        choice = Choice(0, text, calls, "stop" if text else "tool_calls")
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        answer = ChatAnswer("chatcmpl-script", 1, self.model, "fp", (choice,), usage)
        if not body.get("stream"):
            return JSONResponse(completion_body(answer))
        frames = stream_frames(answer, body.get("stream_options"))
        return StreamingResponse(_each(frames), media_type="text/event-stream")

    async def anthropic(self, _request: Request, body: dict[str, Any]) -> Response:
        """A streamed Messages answer."""
        last = body["messages"][-1]
        blocks = last["content"] if isinstance(last["content"], list) else []
        results = [plain_text(b.get("content")) for b in blocks if b.get("type") == "tool_result"]
        users = [plain_text(m["content"]) for m in body["messages"] if m["role"] == "user"]
        text = self.next_text(results[0] if results else None, users)
        if text is None:
            block = Block("tool_use", id="toolu_1", name=self.tool, input=dict(self.arguments))
        else:
            block = Block("text", text=text)
        usage = {
            "input_tokens": 10,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 5,
        }
        stop = "end_turn" if text else "tool_use"
        answer = Answer("msg_script", self.model, (block,), stop, None, usage)
        return StreamingResponse(_each(stream_events(answer)), media_type="text/event-stream")


def run_cli(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
    """Run a CLI headless (no stdin), assert it succeeded, and return what it printed."""
    done = subprocess.run(
        list(args),
        check=False,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@contextlib.contextmanager
def agent_gateway(
    tmp: Path,
    script: ToolLoop,
    upstreams: tuple[FakeOpenAI, FakeAnthropic],
    names: tuple[str, str],
    api_keys: Sequence[str] = (),
) -> Iterator[RunningServer]:
    """``modelyard serve`` with deployments ``names`` (OpenAI-format, Anthropic-format) on the
    fakes, both answering with ``script``."""
    openai, anthropic = upstreams
    openai.script(script.model, script.openai)
    anthropic.script(script.model, script.anthropic)
    config: dict[str, Any] = {
        "local": {"enabled": False},
        "providers": {
            "oa": {"type": "openai_compatible", "base_url": openai.base_url, "api_key": "env::K"},
            "an": {"type": "anthropic", "base_url": anthropic.base_url, "api_key": "env::K"},
        },
        "deployments": {
            names[0]: {"targets": [{"provider": "oa", "model": script.model}]},
            names[1]: {"targets": [{"provider": "an", "model": script.model}]},
        },
    }
    if api_keys:
        config["server"] = {"api_keys": list(api_keys)}
    try:
        with run_server(tmp, config, env={"K": UPSTREAM_KEY}) as server:
            yield server
    finally:
        openai.unscript(script.model)
