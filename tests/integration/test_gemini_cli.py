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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.cli_agents import LOOP_DONE, PLAIN_DONE, ToolLoop, agent_gateway, run_cli
from tests.integration.server import RunningServer
from tests.npm_tools import npm_tool

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GEMINI_CLI_VERSION = "0.61.0"
MODEL = "gemini-cli-script"
GATEWAY_KEY = "sk-gateway-gemini-cli"
# The CLI refuses command substitution; the output differs from the command text all the same.
SCRIPT = ToolLoop(MODEL, "run_shell_command", {"command": "printf 'gemini-%s-ran' 42"})


@pytest.fixture(scope="module")
def gemini_bin() -> Path:
    """The Gemini CLI, installed from the npm registry into the cache on first use."""
    return npm_tool("@google/gemini-cli", GEMINI_CLI_VERSION, "gemini")


@pytest.fixture(scope="module")
def cli_gateway(
    fake_upstream: FakeOpenAI,
    vendor_fakes: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("gemini-cli-gateway")
    upstreams = (fake_upstream, vendor_fakes["anthropic"])
    with agent_gateway(tmp, SCRIPT, upstreams, ("agent-oa", "agent-an"), [GATEWAY_KEY]) as server:
        yield server


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
    args = [str(gemini), "--model", deployment, "--yolo", "--prompt", prompt]
    return run_cli(args, work, env)


@pytest.mark.parametrize("deployment", ["agent-oa", "agent-an"])
def test_gemini_cli_plain_answer(
    gemini_bin: Path, cli_gateway: RunningServer, deployment: str, tmp_path: Path
):
    out = _gemini(gemini_bin, cli_gateway, deployment, "Say that the plain task is done.", tmp_path)
    assert PLAIN_DONE in out


@pytest.mark.parametrize("deployment", ["agent-oa", "agent-an"])
def test_gemini_cli_tool_loop(
    gemini_bin: Path,
    cli_gateway: RunningServer,
    deployment: str,
    tmp_path: Path,
):
    out = _gemini(
        gemini_bin, cli_gateway, deployment, f"{SCRIPT.marker}: run the command.", tmp_path
    )
    assert LOOP_DONE in out
    assert "gemini-42-ran" in out  # the shell ran the command; its output went back to the model
