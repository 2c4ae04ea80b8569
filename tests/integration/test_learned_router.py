"""The learned router in a running server: the decision in the response headers and the access
log, the per-request opt-out, and a new artifact taken up by a reload."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from modelyard.routing import features as F
from modelyard.routing.model import dumps
from modelyard.routing.training import Example, fit
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import run_server
from tests.waiting import wait_until

HARD = ("integral", "proof", "theorem", "derivative", "lemma")
EASY = ("capital", "colour", "animal", "greeting", "weather")


def _artifact(path: Path, hard_needs_strong: bool) -> Path:
    rng = random.Random(1)
    examples = []
    for i in range(300):
        hard = i % 2 == 0
        text = f"please help with the {rng.choice(HARD if hard else EASY)} number {i}"
        examples.append(Example(text, F.facts(text), hard == hard_needs_strong))
    path.write_bytes(dumps(fit(examples, {"trained_on": f"hard->{hard_needs_strong}"})))
    return path


def _config(fake: FakeOpenAI, artifact: Path) -> dict[str, object]:
    return {
        "local": {"enabled": False},
        "providers": {
            "fake": {"type": "openai_compatible", "base_url": fake.base_url, "api_key": "env::K"}
        },
        "deployments": {
            "auto": {
                "strategy": "learned",
                "router": {"artifact": str(artifact), "strong": "fake/gpt-4o", "threshold": 0.5},
                "targets": [
                    {"provider": "fake", "model": "gpt-4o"},
                    {"provider": "fake", "model": "gpt-4o-mini"},
                ],
            }
        },
    }


def _ask(client: openai.OpenAI, text: str, **headers: str) -> tuple[str, str]:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": text}], extra_headers=headers
    )
    assert raw.parse().choices[0].message.content == f"echo: {text}"
    return raw.headers["x-modelyard-model"], raw.headers["x-modelyard-route"]


@pytest.mark.integration
def test_decisions_show_and_a_reload_takes_a_new_router(
    fake_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    live = tmp_path / "live.router"
    _artifact(live, hard_needs_strong=True)
    inverted = _artifact(tmp_path / "inverted.router", hard_needs_strong=False)
    with run_server(tmp_path, _config(fake_upstream, live), env={"K": UPSTREAM_KEY}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        model, route = _ask(client, "is this proof of the theorem right")
        assert model == "gpt-4o" and route.startswith("learned:threshold:strong:")
        model, route = _ask(client, "what is the capital of the country")
        assert model == "gpt-4o-mini" and route.startswith("learned:threshold:weak:")
        model, route = _ask(client, "what is the capital", **{"x-modelyard-routing": "off"})
        assert (model, route) == ("gpt-4o", "learned:off")
        wait_until(lambda: "route=learned:off" in server.log(), "the decision in the access log")
        # A new artifact in place, then a reload: the same request now goes the other way.
        shutil.copyfile(inverted, live)
        subprocess.run(
            [sys.executable, "-m", "modelyard.cli.main", "reload",
             "--pid-file", str(tmp_path / "data" / "modelyard.pid")],
            check=True, capture_output=True,
        )  # fmt: skip
        wait_until(
            lambda: _ask(client, "is this proof of the theorem right")[0] == "gpt-4o-mini",
            "the reloaded router's decision",
        )
        assert server.process.poll() is None
