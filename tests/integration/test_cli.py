"""The command line, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.integration.server import RunningServer, run_server


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )


def test_help_lists_every_command():
    out = _run("--help").stdout
    for command in ("serve", "chat", "models", "config"):
        assert command in out


def test_config_check_ok_and_errors(tmp_path: Path):
    good = tmp_path / "good.yaml"
    good.write_text(
        yaml.safe_dump(
            {
                "providers": {"v": {"type": "vllm", "base_url": "http://127.0.0.1:8000/v1"}},
                "deployments": {"chat": {"targets": [{"provider": "v", "model": "m"}]}},
            }
        )
    )
    ok = _run("config", "check", "--config", str(good))
    assert ok.returncode == 0, ok.stderr
    assert "deployment chat -> v/m" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "providers": {"grok": {"type": "xai", "api_key": "secret-value-123"}},
                "deployments": {"chat": {"targets": [{"provider": "grokk", "model": "m"}]}},
            }
        )
    )
    failed = _run("config", "check", "--config", str(bad))
    assert failed.returncode == 2
    assert "deployments.chat.targets[0].provider: unknown provider 'grokk'" in failed.stderr
    assert "secret-value-123" not in failed.stderr + failed.stdout


def test_models_from_config(tmp_path: Path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"local": {"enabled": False}}))
    out = _run("models", "--config", str(cfg))
    assert out.returncode == 0 and out.stdout.strip() == ""


def test_models_and_chat_against_a_running_server(gateway: RunningServer):
    listed = _run("models", "--url", gateway.url)
    assert listed.returncode == 0
    assert "chat" in listed.stdout.split()
    answer = _run("chat", "hello cli", "-m", "chat", "--url", gateway.url)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == "echo: hello cli"
    interactive = _run("chat", "-m", "chat", "--url", gateway.url, stdin="first\nsecond\n")
    assert "echo: first" in interactive.stdout and "echo: second" in interactive.stdout
    missing = _run("chat", "x", "-m", "nope", "--url", gateway.url)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_the_example_config_is_valid(tmp_path: Path):
    example = Path(__file__).resolve().parents[2] / "examples" / "modelyard.yaml"
    env_keys = [
        "MODELYARD_API_KEY",
        "OPENAI_API_KEY",
        "XAI_API_KEY",
        "DEEPSEEK_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "AZURE_OPENAI_API_KEY",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "config", "check", "--config", str(example)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **{k: "test-value" for k in env_keys}},
    )
    assert result.returncode == 0, result.stderr
    assert "deployment canary -> openai/gpt-4o-mini, gemini/gemini-2.5-flash" in result.stdout


PUBLIC = ("--host", "0.0.0.0", "--port", "0")


def test_serve_refuses_a_public_interface_without_keys(tmp_path: Path):
    config = tmp_path / "modelyard.yaml"
    config.write_text("local: {enabled: false}\n")
    env = {**os.environ, "MODELYARD_DATA_DIR": str(tmp_path / "data")}
    env.pop("MODELYARD_ADMIN_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "serve", "--config", str(config), *PUBLIC],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 2
    assert "refusing to serve 0.0.0.0 without API keys" in result.stderr
    assert "--allow-unauthenticated" in result.stderr


def test_serve_says_it_is_open_on_loopback(tmp_path: Path):
    with run_server(tmp_path, {"local": {"enabled": False}}) as server:
        assert "no API keys exist: every caller is accepted, on loopback only" in server.log()
