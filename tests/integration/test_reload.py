"""Re-pointing a deployment while requests are in flight: nothing is lost, nothing restarts."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import httpx2 as httpx
import openai
import pytest
import yaml
from openai.types.chat import ChatCompletionMessageParam

from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import run_server
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


def _reload(data_dir: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "modelyard.cli.main",
            "reload",
            "--pid-file",
            str(data_dir / "modelyard.pid"),
        ],
        check=True,
        capture_output=True,
    )


def _served_model(client: openai.OpenAI, stream: bool) -> str:
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model="live", messages=USER, stream=True
        ) as resp:
            text = "".join(resp.iter_lines())
            assert "[DONE]" in text
            return resp.headers["x-modelyard-model"]
    raw = client.chat.completions.with_raw_response.create(model="live", messages=USER)
    assert raw.parse().choices[0].message.content == "echo: hi"
    return raw.headers["x-modelyard-model"]


@pytest.mark.parametrize("workers", [1, 2])
def test_reload_under_load_loses_no_request(
    workers: int, fake_upstream: FakeOpenAI, tmp_path: Path
):
    """One worker swaps its config in place; with several, uvicorn replaces them in turn."""
    with run_server(
        tmp_path,
        _config(fake_upstream, "slow-150"),
        env={"UP_KEY": UPSTREAM_KEY},
        extra_args=("--workers", str(workers)),
    ) as server:
        # A connection per request: a worker that stops closes its idle keep-alive connections,
        # and a request the client sends on one just then is cut by HTTP/1.1 itself (clients
        # retry those). What is checked is the server: every request it accepted is answered.
        fresh = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=30)
        client = openai.OpenAI(
            base_url=server.base_url, api_key="x", max_retries=0, http_client=fresh
        )
        seen: list[str] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def hammer(stream: bool) -> None:
            while not stop.is_set():
                try:
                    seen.append(_served_model(client, stream))
                except BaseException as exc:  # every failure is a lost request
                    errors.append(exc)

        threads = [threading.Thread(target=hammer, args=(i % 2 == 0,)) for i in range(6)]
        for t in threads:
            t.start()
        wait_until(lambda: seen.count("slow-150") >= 12, "answers from the old target")
        (tmp_path / "modelyard.yaml").write_text(yaml.safe_dump(_config(fake_upstream, "model-b")))
        _reload(tmp_path / "data")
        # New workers start and load the config: how long that takes depends on the machine,
        # so wait for the new target's answers instead of a fixed time.
        try:
            wait_until(lambda: seen.count("model-b") >= 12, "answers from the new target")
        finally:
            stop.set()
        for t in threads:
            t.join(timeout=30)
        assert errors == []
        assert "slow-150" in seen and "model-b" in seen
        assert seen.count("model-b") >= 6  # every thread got answers from the new target
        assert server.process.poll() is None  # the same process, never restarted
        # Without Redis, several workers cannot share one limit, and serve says so.
        assert ("times its limits" in server.log()) == (workers > 1)


def test_a_broken_config_is_refused_and_the_old_one_keeps_serving(
    fake_upstream: FakeOpenAI, tmp_path: Path
):
    with run_server(
        tmp_path, _config(fake_upstream, "model-a"), env={"UP_KEY": UPSTREAM_KEY}
    ) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        broken = _config(fake_upstream, "model-b")
        broken["deployments"]["live"]["targets"][0]["provider"] = "nope"  # type: ignore[index]
        (tmp_path / "modelyard.yaml").write_text(yaml.safe_dump(broken))
        _reload(tmp_path / "data")
        wait_until(lambda: "reload refused" in server.log(), "the reload refused")
        assert _served_model(client, stream=False) == "model-a"
        assert "deployments.live.targets[0].provider" in server.log()
