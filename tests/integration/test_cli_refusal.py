"""``modelyard chat`` shows a refusal as one: a ``[refused]`` line on stdout (OpenAI's
``refusal``, over Chat Completions, the Responses API and in process); an answer an upstream
stopped for its content (Claude's ``stop_reason: "refusal"``) gets a note on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from modelyard.cli.chat import REFUSED, STOPPED
from tests.fakes.anthropic_messages import REFUSAL as CLAUDE_REFUSAL
from tests.fakes.openai_chat import REFUSAL
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer


def _chat(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "chat", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


def test_a_refusal_is_a_tagged_line_and_goes_back_as_a_refusal(
    gateway: RunningServer, fake_upstream: FakeOpenAI
):
    once = _chat("please refuse", "-m", "chat", "--url", gateway.url)
    assert once.returncode == 0, once.stderr
    assert once.stdout == f"{REFUSED}{REFUSAL}\n"
    assert STOPPED not in once.stderr
    talk = _chat("-m", "chat", "--url", gateway.url, stdin="please refuse\nthen hello\n")
    assert talk.returncode == 0, talk.stderr
    assert f"{REFUSED}{REFUSAL}\n" in talk.stdout and "echo: then hello" in talk.stdout
    # The refused turn goes back in the history as a refusal, not as an empty answer (this
    # upstream type has no refusal field: the gateway sends it the refusal as the turn's text).
    assistant = fake_upstream.last_request.json["messages"][1]
    assert assistant["role"] == "assistant" and assistant["content"] == REFUSAL


def test_a_refusal_over_the_responses_api(gateway: RunningServer):
    answer = _chat("please refuse", "-m", "chat", "--url", gateway.url, "--responses")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout == f"{REFUSED}{REFUSAL}\n"
    assert "response: resp_" in answer.stderr


def test_an_answer_stopped_for_its_content_is_noted_on_stderr(gateway: RunningServer):
    answer = _chat("please refuse", "-m", "m-anthropic-ok", "--url", gateway.url)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout == f"{CLAUDE_REFUSAL}\n"  # the explanation is the text
    assert STOPPED in answer.stderr


def test_a_refusal_in_process(fake_upstream: FakeOpenAI, tmp_path: Path):
    config = tmp_path / "modelyard.yaml"
    provider = {"type": "openai_compatible", "base_url": fake_upstream.base_url}
    provider["api_key"] = "env::UP_KEY"
    config.write_text(
        yaml.safe_dump(
            {
                "local": {"enabled": False},
                "providers": {"fake": provider},
                "deployments": {"chat": {"targets": [{"provider": "fake", "model": "m"}]}},
            }
        )
    )
    base = ("-m", "chat", "--in-process", "--config", str(config))
    talk = _chat(*base, stdin="please refuse\nthen hello\n", UP_KEY=UPSTREAM_KEY)
    assert talk.returncode == 0, talk.stderr
    assert f"{REFUSED}{REFUSAL}\n" in talk.stdout and "echo: then hello" in talk.stdout
    assert fake_upstream.last_request.json["messages"][1]["content"] == REFUSAL
