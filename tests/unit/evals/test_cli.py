"""``modelyard eval`` end to end: a real server in front of a fake upstream of known quality."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.server import RunningServer, run_server

KEY = "sk-upstream-eval"
RIGHT = {"good-model": set(range(1, 10)), "bad-model": set(range(4))}


def answering(model: str):
    async def handler(request: Request, body: dict[str, Any]) -> Response:
        prompt = body["messages"][-1]["content"]
        i = int(prompt.split()[2])
        answer = 2 * i if i % 10 in RIGHT[model] else 2 * i + 1
        return JSONResponse(
            {
                "id": f"chatcmpl-{i}",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"It is {answer}."},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
            }
        )

    return handler


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("eval-cli")
    with FakeOpenAI(api_key=KEY) as fake:
        for model in RIGHT:
            fake.script(model, answering(model))
        provider = {"type": "openai_compatible", "base_url": fake.base_url, "api_key": "env::UP"}
        config = {
            "providers": {"fake": provider},
            "deployments": {
                "good": {"targets": [{"provider": "fake", "model": "good-model"}]},
                "bad": {"targets": [{"provider": "fake", "model": "bad-model"}]},
            },
        }
        with run_server(tmp, config, env={"UP": KEY}) as running:
            yield running


def cli(tmp: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELYARD_DATA_DIR": str(tmp / "data")}
    return subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "eval", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def dataset(tmp: Path, n: int = 30) -> Path:
    path = tmp / "arith.jsonl"
    path.write_text(
        "\n".join(
            orjson.dumps(
                {
                    "id": f"q{i}",
                    "input": f"What is {i} + {i}?",
                    "expected": 2 * i,
                    "grader": "numeric",
                }
            ).decode()
            for i in range(n)
        )
    )
    return path


def test_run_ranks_deployments_saves_reports_and_shows_them(server, tmp_path):
    path = dataset(tmp_path)
    args = [str(path), "--deployments", "bad,good", "--url", server.url, "--run-id", "e2e"]
    done = cli(tmp_path, "run", *args, "--json")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert report["best"] == "good"
    scores = {s["deployment"]: s["score"] for s in report["summaries"]}
    assert scores == {"good": pytest.approx(0.9), "bad": pytest.approx(0.4)}
    (comparison,) = report["comparisons"]
    assert comparison["deployment"] == "bad" and comparison["significant"]
    assert "bad: 30/30" in done.stderr  # plain progress lines when stderr is not a terminal
    summary = {s["deployment"]: s for s in report["summaries"]}["good"]
    assert summary["input_tokens"] > 0 and summary["cost_per_1k_micros"] is None
    folder = tmp_path / "data" / "evals"
    assert (folder / "e2e.json").exists() and (folder / "e2e.jsonl").exists()
    assert "<svg" in (folder / "e2e.html").read_text()

    shown = cli(tmp_path, "show", "e2e")
    assert shown.returncode == 0, shown.stderr
    assert "good" in shown.stdout and "mcnemar_exact" in shown.stdout
    assert "Costs are unknown" not in shown.stdout  # bad is significantly worse: no margin
    as_json = cli(tmp_path, "show", "e2e", "--json")
    assert orjson.loads(as_json.stdout)["run_id"] == "e2e"

    # Running the same run id again resumes: every case is done, nothing is called again.
    lines_before = (folder / "e2e.jsonl").read_text().count("\n")
    again = cli(tmp_path, "run", *args, "--json")
    assert again.returncode == 0, again.stderr
    assert (folder / "e2e.jsonl").read_text().count("\n") == lines_before
    assert orjson.loads(again.stdout)["best"] == "good"


def test_unknown_deployment_is_an_error_per_case_not_a_crash(server, tmp_path):
    path = dataset(tmp_path, 3)
    done = cli(tmp_path, "run", str(path), "--deployments", "nope", "--url", server.url, "--json")
    assert done.returncode == 0, done.stderr
    (summary,) = orjson.loads(done.stdout)["summaries"]
    assert summary["errors"] == 3


def test_cli_errors_and_helpers(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "q", "expected": "x"}\n{"input": 3}\n')
    done = cli(tmp_path, "run", str(bad), "--deployments", "a")
    assert done.returncode == 2 and f"{bad}:2: input" in done.stderr
    assert cli(tmp_path, "show", "missing").returncode == 1
    prompts = cli(tmp_path, "prompts")
    assert "rubric@1" in prompts.stdout and "pairwise@1" in prompts.stdout
    assert "smoke" in cli(tmp_path, "datasets").stdout
    shadow = cli(tmp_path, "shadow", "chat")
    assert shadow.returncode == 1 and "no shadow records for deployment 'chat'" in shadow.stderr
    judged = cli(tmp_path, "run", "judged", "--deployments", "a")
    assert judged.returncode == 2 and "needs a judge" in judged.stderr


def test_shadow_from_file(tmp_path):
    records = tmp_path / "shadow.jsonl"
    records.write_text(
        "\n".join(
            orjson.dumps(
                {
                    "id": f"s{i}",
                    "messages": [{"role": "user", "content": "capital of France?"}],
                    "primary_output": "Paris",
                    "candidate_output": "paris" if i % 2 else "Lyon",
                }
            ).decode()
            for i in range(6)
        )
    )
    done = cli(tmp_path, "shadow", "chat", "--from", str(records), "--mode", "contains", "--json")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    scores = {s["deployment"]: s["score"] for s in report["summaries"]}
    assert scores == {"primary": 1.0, "candidate": 0.5}


def test_smoke_dataset_on_the_embedded_local_model_under_a_minute(server, tmp_path):
    import time

    started = time.monotonic()
    args = ["smoke", "--deployments", "local", "--url", server.url, "--concurrency", "1"]
    done = cli(tmp_path, "run", *args, "--json")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    (summary,) = orjson.loads(done.stdout)["summaries"]
    assert summary["calls"] == 11 and summary["errors"] == 0
    assert summary["output_tokens"] > 0
    assert 0 < summary["score"] <= 1  # a 135M model gets some of these right, not all
    assert elapsed < 60, f"{elapsed:.1f}s"
    print(f"smoke on local: {elapsed:.1f}s, score {summary['score']:.2f}")
