"""OpenAI's Codex CLI (npm ``@openai/codex``) against the gateway's Responses API, through an
OpenAI-format and an Anthropic-format deployment: a plain task and a tool loop in which the
scripted upstream has Codex run a harmless shell command.

Codex is installed by this module's set-up into a cache directory (``npm install``, once per
machine); the tests are marked ``integration`` and ``slow``, so ``make test-fast`` skips them.
Codex streams every turn and sends ``store: false``, ``prompt_cache_key``, ``client_metadata``,
``developer`` messages, strict function tools and a ``namespace`` tool group.
"""

from __future__ import annotations

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

CODEX_VERSION = "0.169.0"
MODEL = "codex-script"
SCRIPT = ToolLoop(MODEL, "exec_command", {"cmd": "echo codex-$((6 * 7))-ran"})


@pytest.fixture(scope="module")
def codex_bin() -> Path:
    """The Codex CLI, installed from the npm registry into the cache on first use."""
    return npm_tool("@openai/codex", CODEX_VERSION, "codex")


@pytest.fixture(scope="module")
def codex_gateway(
    fake_upstream: FakeOpenAI,
    vendor_fakes: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("codex-gateway")
    upstreams = (fake_upstream, vendor_fakes["anthropic"])
    with agent_gateway(tmp, SCRIPT, upstreams, ("codex-oa", "codex-an"), ()) as server:
        yield server


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
    return run_cli([*args, prompt], work, env)


@pytest.mark.parametrize("deployment", ["codex-oa", "codex-an"])
def test_codex_plain_task(
    codex_bin: Path, codex_gateway: RunningServer, deployment: str, tmp_path: Path
):
    out = _codex(codex_bin, codex_gateway, deployment, "Say that the plain task is done.", tmp_path)
    assert PLAIN_DONE in out


@pytest.mark.parametrize("deployment", ["codex-oa", "codex-an"])
def test_codex_tool_loop(
    codex_bin: Path, codex_gateway: RunningServer, deployment: str, tmp_path: Path
):
    out = _codex(codex_bin, codex_gateway, deployment, f"{SCRIPT.marker}: run echo.", tmp_path)
    assert LOOP_DONE in out
    assert "codex-42-ran" in out  # the shell ran the command; its output went back to the model
