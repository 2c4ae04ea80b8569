"""Claude Code (npm ``@anthropic-ai/claude-code``) on models that are not Claude: ``claude -p``
with its default tools through an OpenAI-format, an Anthropic-format and a Gemini-format
deployment, each under a non-Claude name. A plain answer, and a tool loop in which the scripted
upstream has Claude Code run a harmless command with its shell (``Bash``) tool.

Under a non-Claude model name Claude Code sends a ``system`` turn inside ``messages`` with the
``mid-conversation-system-*`` beta, system blocks with ``cache_control`` breakpoints and a long
list of ``anthropic-beta`` names; the scripted upstreams record what reached them so the tests
assert what was forwarded. Claude Code is installed by this module's set-up into a cache
directory (``npm install``, once per machine); the tests are marked ``integration`` and
``slow``, so ``make test-fast`` skips them. Telemetry, error reports and update checks are off
and ``HOME`` is a temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tests.fakes.anthropic_messages import Answer, Block
from tests.fakes.anthropic_stream import stream_events
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.anthropic_validate import check_request
from tests.fakes.gemini_model import Answer as GeminiAnswer
from tests.fakes.gemini_model import Candidate
from tests.fakes.gemini_responses import response_body, sse_frames, stream_chunks
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_chat import ChatAnswer, Choice, ToolCall, completion_body
from tests.fakes.openai_stream import stream_frames
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server
from tests.npm_tools import npm_tool

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLAUDE_CODE_VERSION = "2.1.332"
MODEL = "cc-script"
TOOL_MARKER = "RUN-THE-TOOL"
COMMAND = "echo claude-$((6 * 7))-ran"
DEPLOYMENTS = ["agent-oa", "agent-an", "agent-ge"]


@pytest.fixture(scope="module")
def claude_bin() -> Path:
    """Claude Code, installed from the npm registry into the cache on first use."""
    return npm_tool("@anthropic-ai/claude-code", CLAUDE_CODE_VERSION, "claude")


@dataclass
class Received:
    """What the scripted upstreams were sent, by upstream format."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    bodies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    headers: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def add(self, kind: str, request: Request, body: dict[str, Any]) -> None:
        with self.lock:
            self.bodies.setdefault(kind, []).append(body)
            self.headers.setdefault(kind, []).append(dict(request.headers))


@dataclass(frozen=True)
class Turn:
    """What the scripted model does next: call the shell tool, or say ``text``."""

    text: str = ""
    call: bool = False


def _plan(tool_result: str | None, user_texts: list[str]) -> Turn:
    if tool_result is not None:
        return Turn(text=f"TOOL-LOOP-DONE {tool_result.strip()[:200]}")
    if any(TOOL_MARKER in text for text in user_texts):
        return Turn(call=True)
    return Turn(text="PLAIN-TASK-DONE")


def _texts(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(str(p.get("text", "")) for p in content or [] if isinstance(p, dict))


def _bash_input() -> dict[str, str]:
    return {"command": COMMAND, "description": "Print a greeting"}


async def _each(frames: list[bytes]) -> Any:
    for frame in frames:
        yield frame


def _openai_script(received: Received) -> Any:
    async def answer(request: Request, body: dict[str, Any]) -> Response:
        received.add("openai", request, body)
        messages = body["messages"]
        last = messages[-1]
        result = _texts(last.get("content")) if last["role"] == "tool" else None
        turn = _plan(result, [_texts(m.get("content")) for m in messages if m["role"] == "user"])
        args = json.dumps(_bash_input())
        calls = (ToolCall("call_1", "Bash", args),) if turn.call else ()
        finish = "tool_calls" if turn.call else "stop"
        choice = Choice(0, None if turn.call else turn.text, calls, finish)
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        chat = ChatAnswer("chatcmpl-script", 1, MODEL, "fp", (choice,), usage)
        if not body.get("stream"):
            return JSONResponse(completion_body(chat))
        frames = stream_frames(chat, body.get("stream_options"))
        return StreamingResponse(_each(frames), media_type="text/event-stream")

    return answer


def _anthropic_script(received: Received) -> Any:
    async def answer(request: Request, body: dict[str, Any]) -> Response:
        received.add("anthropic", request, body)
        # The real API's checks, with the betas the gateway forwarded.
        error = check_request(body, betas=request.headers.get("anthropic-beta", ""))
        if error is not None:
            problem = {"type": "invalid_request_error", "message": error}
            return JSONResponse({"type": "error", "error": problem}, status_code=400)
        turns = body["messages"]
        last = turns[-1]
        blocks = last["content"] if isinstance(last["content"], list) else []
        results = [_texts(b.get("content")) for b in blocks if b.get("type") == "tool_result"]
        users = [_texts(m["content"]) for m in turns if m["role"] == "user"]
        turn = _plan(results[0] if results else None, users)
        if turn.call:
            block = Block("tool_use", id="toolu_1", name="Bash", input=_bash_input())
        else:
            block = Block("text", text=turn.text)
        usage = {
            "input_tokens": 10,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 5,
        }
        stop = "tool_use" if turn.call else "end_turn"
        message = Answer("msg_script", MODEL, (block,), stop, None, usage)
        return StreamingResponse(_each(stream_events(message)), media_type="text/event-stream")

    return answer


def _gemini_script(received: Received) -> Any:
    async def answer(request: Request, body: dict[str, Any]) -> Response:
        received.add("gemini", request, body)
        contents = body["contents"]
        parts = contents[-1]["parts"]
        responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
        result = json.dumps(responses[0].get("response")) if responses else None
        users = [
            " ".join(str(p.get("text", "")) for p in c["parts"])
            for c in contents
            if c["role"] == "user"
        ]
        turn = _plan(result, users)
        calls = ({"functionCall": {"name": "Bash", "args": _bash_input()}},) if turn.call else ()
        candidate = Candidate(0, None, None if turn.call else turn.text, calls, "STOP")
        usage = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}
        gemini = GeminiAnswer("resp-script", MODEL, (candidate,), False, usage)
        if "streamGenerateContent" not in request.url.path:
            return JSONResponse(response_body(gemini))
        frames = sse_frames(stream_chunks(gemini))
        return StreamingResponse(_each(frames), media_type="text/event-stream")

    return answer


@pytest.fixture(scope="module")
def received() -> Received:
    return Received()


@pytest.fixture(scope="module")
def claude_gateway(
    fake_upstream: FakeOpenAI,
    vendor_fakes: dict[str, Any],
    received: Received,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    anthropic: FakeAnthropic = vendor_fakes["anthropic"]
    gemini: FakeGemini = vendor_fakes["gemini"]
    fake_upstream.script(MODEL, _openai_script(received))
    anthropic.script(MODEL, _anthropic_script(received))
    gemini.script(MODEL, _gemini_script(received))
    providers = {
        "oa": {
            "type": "openai_compatible",
            "base_url": fake_upstream.base_url,
            "api_key": "env::K",
        },
        "an": {"type": "anthropic", "base_url": anthropic.base_url, "api_key": "env::K"},
        "ge": {"type": "gemini", "base_url": gemini.base_url, "api_key": "env::K"},
    }
    deployments = {
        name: {"targets": [{"provider": name.rsplit("-", 1)[1], "model": MODEL}]}
        for name in DEPLOYMENTS
    }
    config = {"local": {"enabled": False}, "providers": providers, "deployments": deployments}
    tmp = tmp_path_factory.mktemp("claude-gateway")
    try:
        with run_server(tmp, config, env={"K": UPSTREAM_KEY}) as server:
            yield server
    finally:
        fake_upstream.unscript(MODEL)
        gemini.unscript(MODEL)


def _claude(claude: Path, server: RunningServer, deployment: str, prompt: str, tmp: Path) -> str:
    home = tmp / "home"
    work = tmp / "work"
    home.mkdir()
    work.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": "unused-by-an-open-gateway",
        # Every model Claude Code would pick (the main one and the small, fast one) is ours.
        "ANTHROPIC_MODEL": deployment,
        "ANTHROPIC_SMALL_FAST_MODEL": deployment,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": deployment,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": deployment,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": deployment,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    args = [str(claude), "-p", prompt, "--model", deployment, "--allowedTools", "Bash"]
    done = subprocess.run(
        args,
        check=False,
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    return done.stdout


def _kind(deployment: str) -> str:
    return {"agent-oa": "openai", "agent-an": "anthropic", "agent-ge": "gemini"}[deployment]


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_claude_code_plain_answer(
    claude_bin: Path,
    claude_gateway: RunningServer,
    received: Received,
    deployment: str,
    tmp_path: Path,
):
    out = _claude(claude_bin, claude_gateway, deployment, "Say that the task is done.", tmp_path)
    assert "PLAIN-TASK-DONE" in out
    assert received.bodies.get(_kind(deployment)), "the deployment's upstream was never called"


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_claude_code_tool_loop(
    claude_bin: Path,
    claude_gateway: RunningServer,
    received: Received,
    deployment: str,
    tmp_path: Path,
):
    out = _claude(claude_bin, claude_gateway, deployment, f"{TOOL_MARKER}: run echo.", tmp_path)
    assert "TOOL-LOOP-DONE" in out
    assert "claude-42-ran" in out  # the shell ran the command; its output went back to the model
    _check_forwarded(received, _kind(deployment))


def _last(received: Received, kind: str) -> tuple[dict[str, Any], dict[str, str]]:
    assert received.bodies.get(kind), f"no {kind} upstream call was made"
    return received.bodies[kind][-1], received.headers[kind][-1]


def _check_forwarded(received: Received, kind: str) -> None:
    """What Claude Code sent in the tool loop, as forwarded to an upstream of ``kind``."""
    body, headers = _last(received, kind)
    if kind == "anthropic":
        # The client's betas, per request; its fields that need them; system blocks kept apart
        # with their cache breakpoints; the breakpoint on the tool result of the loop.
        assert "claude-code-20250219" in headers["anthropic-beta"].split(",")
        assert body["thinking"]["type"] == "adaptive" and "context_management" in body
        system = body["system"]
        assert isinstance(system, list) and len(system) > 1
        assert any(block.get("cache_control") == {"type": "ephemeral"} for block in system)
        results = [
            block
            for turn in body["messages"]
            if isinstance(turn["content"], list)
            for block in turn["content"]
            if block.get("type") == "tool_result"
        ]
        assert results and results[-1].get("cache_control") == {"type": "ephemeral"}
        return
    assert "anthropic-beta" not in headers
    if kind == "openai":
        assert not {"thinking", "context_management", "output_config"} & body.keys()
        lead = body["messages"][0]
        assert lead["role"] == "system" and isinstance(lead["content"], str)
        text = lead["content"]
    else:
        assert "thinkingConfig" not in body.get("generationConfig", {})  # adaptive: the default
        text = body["systemInstruction"]["parts"][0]["text"]
    # Claude Code's first two system blocks (a billing line, then the preamble), joined by a
    # blank line instead of run together.
    first, _, rest = text.partition("\n\n")
    assert first.startswith("x-anthropic-billing-header") and rest.startswith("You are")
