"""``modelyard chat --responses``: a stored multi-turn conversation from the terminal."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.server import RunningServer


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "chat", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )


def test_chat_responses_keeps_the_conversation_on_the_server(
    gateway: RunningServer, fake_upstream: FakeOpenAI
):
    base = ("-m", "chat", "--url", gateway.url, "--responses")
    session = _run(*base, stdin="CLI-FIRST-9931\nsecond turn\n")
    assert session.returncode == 0, session.stderr
    assert "echo: CLI-FIRST-9931" in session.stdout and "echo: second turn" in session.stdout
    ids = [line.split()[-1] for line in session.stderr.splitlines() if line.startswith("response:")]
    assert len(ids) == 2 and all(i.startswith("resp_") for i in ids)
    sent = fake_upstream.last_request.json
    assert "CLI-FIRST-9931" in json.dumps(sent["messages"])  # resent by the server, not the CLI
    later = _run("third turn", "-m", "chat", "--url", gateway.url, "--previous", ids[-1])
    assert later.returncode == 0, later.stderr
    assert later.stdout.strip() == "echo: third turn"
    texts = json.dumps(fake_upstream.last_request.json["messages"])
    assert "CLI-FIRST-9931" in texts and "second turn" in texts
    unknown = _run("x", "-m", "chat", "--url", gateway.url, "--previous", "resp_nope")
    assert unknown.returncode == 1 and "no response with id" in unknown.stderr
