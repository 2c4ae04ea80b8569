"""Google's Gemini CLI (npm ``@google/gemini-cli``) against the gateway's Gemini API, through an
OpenAI-format and an Anthropic-format deployment: a plain answer, and a tool loop in which the
scripted upstream has the CLI run a harmless shell command.

The CLI is installed by this module's set-up into a cache directory (``npm install``, once per
machine); the tests are marked ``integration`` and ``slow``, so ``make test-fast`` skips them.
It runs headless (``gemini -p``) with ``HOME`` in a temporary folder, telemetry, usage
statistics and update checks off, the workspace trusted and tools approved (``--yolo``), pointed
at the gateway by ``GOOGLE_GEMINI_BASE_URL`` with a gateway key in ``GEMINI_API_KEY`` (sent as
``x-goog-api-key``). It streams every turn (``streamGenerateContent?alt=sse``) and sends
``thinkingConfig``, a system instruction and some twenty function declarations.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tests.fakes.anthropic_messages import Answer, Block
from tests.fakes.anthropic_stream import stream_events
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_chat import ChatAnswer, Choice, ToolCall
from tests.fakes.openai_stream import stream_frames
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server
from tests.npm_tools import npm_tool

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GEMINI_CLI_VERSION = "0.61.0"
MODEL = "gemini-cli-script"
GATEWAY_KEY = "sk-gateway-gemini-cli"
TOOL_MARKER = "RUN-THE-TOOL"
SHELL_TOOL = "run_shell_command"
# The CLI refuses command substitution; the output differs from the command text all the same.
COMMAND = "printf 'gemini-%s-ran' 42"


@pytest.fixture(scope="module")
def gemini_bin() -> Path:
    """The Gemini CLI, installed from the npm registry into the cache on first use."""
    return npm_tool("@google/gemini-cli", GEMINI_CLI_VERSION, "gemini")


def _plain(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(
        str(block.get("text", "")) for block in content or () if isinstance(block, dict)
    )


def _next_turn(tool_result: str | None, user_texts: list[str]) -> str | None:
    """The scripted model's next move: a final text, or None to call the shell tool."""
    if tool_result is not None:
        return f"TOOL-LOOP-DONE {tool_result.strip()[:300]}"
    return None if any(TOOL_MARKER in t for t in user_texts) else "PLAIN-TASK-DONE"


async def _frames(frames: list[bytes]) -> Any:
    for frame in frames:
        yield frame


async def _openai_script(_request: Request, body: dict[str, Any]) -> Response:
    messages = body["messages"]
    result = _plain(messages[-1].get("content")) if messages[-1]["role"] == "tool" else None
    text = _next_turn(result, [_plain(m.get("content")) for m in messages if m["role"] == "user"])
    calls = () if text else (ToolCall("call_1", SHELL_TOOL, json.dumps({"command": COMMAND})),)
    choice = Choice(0, text, calls, "stop" if text else "tool_calls")
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    answer = ChatAnswer("chatcmpl-script", 1, MODEL, "fp", (choice,), usage)
    frames = stream_frames(answer, body.get("stream_options"))
    return StreamingResponse(_frames(frames), media_type="text/event-stream")


async def _anthropic_script(_request: Request, body: dict[str, Any]) -> Response:
    last = body["messages"][-1]
    blocks = last["content"] if isinstance(last["content"], list) else []
    results = [_plain(b.get("content")) for b in blocks if b.get("type") == "tool_result"]
    users = [_plain(m["content"]) for m in body["messages"] if m["role"] == "user"]
    text = _next_turn(results[0] if results else None, users)
    if text is None:
        block = Block("tool_use", id="toolu_1", name=SHELL_TOOL, input={"command": COMMAND})
    else:
        block = Block("text", text=text)
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 5,
    }
    answer = Answer("msg_script", MODEL, (block,), "end_turn" if text else "tool_use", None, usage)
    return StreamingResponse(_frames(stream_events(answer)), media_type="text/event-stream")


@pytest.fixture(scope="module")
def cli_gateway(
    fake_upstream: FakeOpenAI,
    vendor_fakes: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    anthropic: FakeAnthropic = vendor_fakes["anthropic"]
    fake_upstream.script(MODEL, _openai_script)
    anthropic.script(MODEL, _anthropic_script)
    config = {
        "server": {"api_keys": [GATEWAY_KEY]},
        "local": {"enabled": False},
        "providers": {
            "oa": {
                "type": "openai_compatible",
                "base_url": fake_upstream.base_url,
                "api_key": "env::K",
            },
            "an": {"type": "anthropic", "base_url": anthropic.base_url, "api_key": "env::K"},
        },
        "deployments": {
            "agent-oa": {"targets": [{"provider": "oa", "model": MODEL}]},
            "agent-an": {"targets": [{"provider": "an", "model": MODEL}]},
        },
    }
    tmp = tmp_path_factory.mktemp("gemini-cli-gateway")
    try:
        with run_server(tmp, config, env={"K": UPSTREAM_KEY}) as server:
            yield server
    finally:
        fake_upstream.unscript(MODEL)


def _gemini(gemini: Path, server: RunningServer, deployment: str, prompt: str, tmp: Path) -> str:
    home = tmp / "home"
    (home / ".gemini").mkdir(parents=True)
    settings = {
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
        "telemetry": {"enabled": False},
        "privacy": {"usageStatisticsEnabled": False},
        "security": {"auth": {"selectedType": "gemini-api-key"}},
    }
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    work = tmp / "work"
    work.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GOOGLE_GEMINI_BASE_URL": server.url,
        "GEMINI_API_KEY": GATEWAY_KEY,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        [str(gemini), "--model", deployment, "--yolo", "--prompt", prompt],
        check=False,
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("deployment", ["agent-oa", "agent-an"])
def test_gemini_cli_plain_answer(
    gemini_bin: Path, cli_gateway: RunningServer, deployment: str, tmp_path: Path
):
    out = _gemini(gemini_bin, cli_gateway, deployment, "Say that the plain task is done.", tmp_path)
    assert "PLAIN-TASK-DONE" in out


@pytest.mark.parametrize("deployment", ["agent-oa", "agent-an"])
def test_gemini_cli_tool_loop(
    gemini_bin: Path,
    cli_gateway: RunningServer,
    deployment: str,
    tmp_path: Path,
):
    out = _gemini(gemini_bin, cli_gateway, deployment, f"{TOOL_MARKER}: run echo.", tmp_path)
    assert "TOOL-LOOP-DONE" in out
    assert "gemini-42-ran" in out  # the shell ran the command; its output went back to the model
