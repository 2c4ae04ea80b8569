"""OpenAI's Codex CLI (npm ``@openai/codex``) against the gateway's Responses API, through an
OpenAI-format and an Anthropic-format deployment: a plain task and a tool loop in which the
scripted upstream has Codex run a harmless shell command.

Codex is installed by this module's set-up into a cache directory (``npm install``, once per
machine); the tests are marked ``integration`` and ``slow``, so ``make test-fast`` skips them.
Codex streams every turn and sends ``store: false``, ``prompt_cache_key``, ``client_metadata``,
``developer`` messages, strict function tools and a ``namespace`` tool group.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
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
from tests.npm_tools import npm_tool

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CODEX_VERSION = "0.169.0"
MODEL = "codex-script"
TOOL_MARKER = "RUN-THE-TOOL"
COMMAND = "echo codex-$((6 * 7))-ran"


@pytest.fixture(scope="module")
def codex_bin() -> Path:
    """The Codex CLI, installed from the npm registry into the cache on first use."""
    return npm_tool("@openai/codex", CODEX_VERSION, "codex")


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


async def _openai_script(_request: Request, body: dict[str, Any]) -> Response:
    messages = body["messages"]
    last = messages[-1]
    result = _texts(last.get("content")) if last["role"] == "tool" else None
    turn = _plan(result, [_texts(m.get("content")) for m in messages if m["role"] == "user"])
    calls = (ToolCall("call_1", "exec_command", json.dumps({"cmd": COMMAND})),) if turn.call else ()
    choice = Choice(
        0, None if turn.call else turn.text, calls, "tool_calls" if turn.call else "stop"
    )
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    answer = ChatAnswer("chatcmpl-script", 1, MODEL, "fp", (choice,), usage)
    if not body.get("stream"):
        return JSONResponse(completion_body(answer))
    frames = stream_frames(answer, body.get("stream_options"))
    return StreamingResponse(_each(frames), media_type="text/event-stream")


async def _anthropic_script(_request: Request, body: dict[str, Any]) -> Response:
    last = body["messages"][-1]
    blocks = last["content"] if isinstance(last["content"], list) else []
    results = [_texts(b.get("content")) for b in blocks if b.get("type") == "tool_result"]
    users = [_texts(m["content"]) for m in body["messages"] if m["role"] == "user"]
    turn = _plan(results[0] if results else None, users)
    if turn.call:
        block = Block("tool_use", id="toolu_1", name="exec_command", input={"cmd": COMMAND})
    else:
        block = Block("text", text=turn.text)
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 5,
    }
    stop = "tool_use" if turn.call else "end_turn"
    answer = Answer("msg_script", MODEL, (block,), stop, None, usage)
    return StreamingResponse(_each(stream_events(answer)), media_type="text/event-stream")


async def _each(frames: list[bytes]) -> Any:
    for frame in frames:
        yield frame


@pytest.fixture(scope="module")
def codex_gateway(
    fake_upstream: FakeOpenAI,
    vendor_fakes: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    anthropic: FakeAnthropic = vendor_fakes["anthropic"]
    fake_upstream.script(MODEL, _openai_script)
    anthropic.script(MODEL, _anthropic_script)
    providers = {
        "oa": {
            "type": "openai_compatible",
            "base_url": fake_upstream.base_url,
            "api_key": "env::K",
        },
        "an": {"type": "anthropic", "base_url": anthropic.base_url, "api_key": "env::K"},
    }
    config = {
        "local": {"enabled": False},
        "providers": providers,
        "deployments": {
            "codex-oa": {"targets": [{"provider": "oa", "model": MODEL}]},
            "codex-an": {"targets": [{"provider": "an", "model": MODEL}]},
        },
    }
    tmp = tmp_path_factory.mktemp("codex-gateway")
    try:
        with run_server(tmp, config, env={"K": UPSTREAM_KEY}) as server:
            yield server
    finally:
        fake_upstream.unscript(MODEL)


def _codex(codex: Path, server: RunningServer, deployment: str, prompt: str, tmp: Path) -> str:
    home = tmp / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'model = "{deployment}"\n'
        'model_provider = "modelyard"\n'
        "[model_providers.modelyard]\n"
        'name = "Modelyard"\n'
        f'base_url = "{server.base_url}"\n'
        'wire_api = "responses"\n'
        'env_key = "MODELYARD_API_KEY"\n'
    )
    work = tmp / "work"
    work.mkdir()
    env = {**os.environ, "CODEX_HOME": str(home), "MODELYARD_API_KEY": "unused"}
    args = [
        str(codex),
        "exec",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
    ]
    done = subprocess.run(
        [*args, prompt],
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


@pytest.mark.parametrize("deployment", ["codex-oa", "codex-an"])
def test_codex_plain_task(
    codex_bin: Path, codex_gateway: RunningServer, deployment: str, tmp_path: Path
):
    out = _codex(codex_bin, codex_gateway, deployment, "Say that the plain task is done.", tmp_path)
    assert "PLAIN-TASK-DONE" in out


@pytest.mark.parametrize("deployment", ["codex-oa", "codex-an"])
def test_codex_tool_loop(
    codex_bin: Path, codex_gateway: RunningServer, deployment: str, tmp_path: Path
):
    out = _codex(codex_bin, codex_gateway, deployment, f"{TOOL_MARKER}: run echo.", tmp_path)
    assert "TOOL-LOOP-DONE" in out
    assert "codex-42-ran" in out  # the shell ran the command; its output went back to the model
