"""Deployment versions end to end: a real ``modelyard serve``, config edits and reloads, and
``modelyard deployments history|rollback`` as an operator would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openai
import yaml
from openai.types.chat import ChatCompletionMessageParam

from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server
from tests.waiting import wait_until

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def _config(fake: FakeOpenAI, model: str) -> dict[str, object]:
    return {
        "local": {"enabled": False},
        "providers": {
            "fake": {
                "type": "openai_compatible",
                "base_url": fake.base_url,
                "api_key": "env::UP_KEY",
            }
        },
        "deployments": {"live": {"targets": [{"provider": "fake", "model": model}]}},
    }


def _cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The operator runs the CLI where the server runs: same data dir, same secrets.
    env = {**os.environ, "MODELYARD_DATA_DIR": str(tmp / "data"), "UP_KEY": UPSTREAM_KEY}
    env.pop("MODELYARD_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", *args],
        check=False,  # the callers assert on the exit code
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def _history(tmp: Path) -> list[dict[str, object]]:
    done = _cli(
        tmp, "deployments", "history", "live", "--json", "--config", str(tmp / "modelyard.yaml")
    )
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


def _served_model(client: openai.OpenAI) -> str:
    raw = client.chat.completions.with_raw_response.create(model="live", messages=USER)
    return raw.headers["x-modelyard-model"]


def _wait_for_model(client: openai.OpenAI, model: str) -> None:
    wait_until(lambda: _served_model(client) == model, f"{model} served")


def _reloads(server: RunningServer) -> int:
    return server.log().count("reloaded ")


def _edit_and_reload(tmp: Path, fake: FakeOpenAI, model: str) -> None:
    (tmp / "modelyard.yaml").write_text(yaml.safe_dump(_config(fake, model)))
    done = _cli(tmp, "reload")
    assert done.returncode == 0, done.stderr


def test_versions_history_rollback_and_the_config_winning_again(
    fake_upstream: FakeOpenAI, tmp_path: Path
):
    config = _config(fake_upstream, "model-a")
    with run_server(tmp_path, config, env={"UP_KEY": UPSTREAM_KEY}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=30)
        assert _served_model(client) == "model-a"

        _edit_and_reload(tmp_path, fake_upstream, "model-b")
        _wait_for_model(client, "model-b")
        rows = _history(tmp_path)
        assert [(r["version"], r["live"]) for r in rows] == [(1, False), (2, True)]
        assert rows[1]["targets"] == "failover: fake/model-b"

        config_arg = ("--config", str(tmp_path / "modelyard.yaml"))
        done = _cli(tmp_path, "deployments", "rollback", "live", "1", *config_arg)
        assert done.returncode == 0, done.stderr
        assert "recorded version 3" in done.stdout
        _wait_for_model(client, "model-a")
        # The rolled-back spec survives reloads of an unchanged config.
        reloads = _reloads(server)
        assert _cli(tmp_path, "reload").returncode == 0
        wait_until(lambda: _reloads(server) > reloads, "the reload applied")
        assert _served_model(client) == "model-a"

        _edit_and_reload(tmp_path, fake_upstream, "model-c")
        _wait_for_model(client, "model-c")
        rows = _history(tmp_path)
        assert [(r["version"], r["source"], r["live"]) for r in rows] == [
            (1, "config", False),
            (2, "config", False),
            (3, "rollback:1", False),
            (4, "config", True),
        ]
        assert rows[2]["targets"] == "failover: fake/model-a"
        assert server.process.poll() is None  # never restarted

    # With the server gone, a rollback is recorded for the next start.
    done = _cli(tmp_path, "deployments", "rollback", "live", "2", *config_arg)
    assert done.returncode == 0, done.stderr
    assert "takes effect when the server next starts" in done.stdout
    listing = _cli(tmp_path, "deployments", "history", "live", *config_arg).stdout
    assert "*    5" in listing and "rollback:2" in listing and "fake/model-b" in listing
