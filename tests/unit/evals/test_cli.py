"""``modelyard eval`` end to end: a real server in front of a fake upstream of known quality."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.openai_chat import REFUSAL
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.server import RunningServer, run_server
from tests.waiting import wait_until

KEY = "sk-upstream-eval"
RIGHT = {"good-model": set(range(1, 10)), "bad-model": set(range(4))}


def answering(model: str) -> Callable[[Request, dict[str, Any]], Awaitable[Response]]:
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


# A suite started in the background (``make test &`` from a script) runs with SIGINT ignored, and
# a child inherits that, so the CLI would never see the test's Ctrl-C: the CLI runs here with
# Python's default SIGINT handler, as it has when started from a terminal.
WITH_SIGINT = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'modelyard'; runpy.run_module('modelyard.cli.main', run_name='__main__')"
)


class Gate:
    """Answers the first ``free`` calls at once and holds every later one until ``opened``: the
    run is certainly mid-way when the test interrupts it, however fast or slow the machine."""

    def __init__(self, model: str, free: int) -> None:
        self._answer = answering(model)
        self._free = free
        self._calls = 0
        self.holding = threading.Event()
        self.opened = threading.Event()

    async def __call__(self, request: Request, body: dict[str, Any]) -> Response:
        self._calls += 1  # the fake serves on one event loop: no two calls count at once
        if self._calls > self._free and not self.opened.is_set():
            self.holding.set()
            await asyncio.to_thread(self.opened.wait, 300)
        return await self._answer(request, body)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as upstream:
        for model in RIGHT:
            upstream.script(model, answering(model))
        yield upstream


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAI) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("eval-cli")
    provider = {"type": "openai_compatible", "base_url": fake.base_url, "api_key": "env::UP"}
    config = {
        "providers": {"fake": provider},
        "deployments": {
            "good": {"targets": [{"provider": "fake", "model": "good-model"}]},
            "bad": {"targets": [{"provider": "fake", "model": "bad-model"}]},
            "slow": {"targets": [{"provider": "fake", "model": "slow-model"}]},
            # The fake's own model: it refuses a prompt asking it to, as OpenAI's refusal reads.
            "careful": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]},
        },
    }
    with run_server(tmp, config, env={"UP": KEY}) as running:
        yield running


def cli_env(tmp: Path) -> dict[str, str]:
    env = {**os.environ, "MODELYARD_DATA_DIR": str(tmp / "data")}
    for name in ("MODELYARD_CONFIG", "MODELYARD_DATABASE_URL"):
        env.pop(name, None)
    return env


def cli(tmp: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = cli_env(tmp)
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


@pytest.mark.integration
def test_run_ranks_deployments_stores_reports_and_shows_them(server, fake, tmp_path):
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
    assert (folder / "e2e.json").exists()  # exported; the run itself lives in the store
    assert "<svg" in (folder / "e2e.html").read_text()
    assert stored_results(tmp_path, "e2e") == 60

    listed = cli(tmp_path, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (run,) = orjson.loads(listed.stdout)
    assert (run["id"], run["status"], run["results"], run["best"]) == ("e2e", "done", 60, "good")
    assert run["deployments"] == ["bad", "good"] and run["dataset"] == "arith"
    assert "e2e" in cli(tmp_path, "list").stdout

    # show reads the store: the exported file is not needed.
    (folder / "e2e.json").unlink()
    shown = cli(tmp_path, "show", "e2e")
    assert shown.returncode == 0, shown.stderr
    assert "good" in shown.stdout and "mcnemar_exact" in shown.stdout
    assert "Costs are unknown" not in shown.stdout  # bad is significantly worse: no margin
    as_json = orjson.loads(cli(tmp_path, "show", "e2e", "--json").stdout)
    assert as_json["run_id"] == "e2e" and len(as_json["results"]) == 60
    assert as_json["summaries"] == report["summaries"]

    # Running the same run id again resumes: every case is done, nothing is called again.
    calls_before = len(fake.requests)
    again = cli(tmp_path, "run", *args, "--json")
    assert again.returncode == 0, again.stderr
    assert len(fake.requests) == calls_before
    assert orjson.loads(again.stdout)["best"] == "good"
    assert stored_results(tmp_path, "e2e") == 60


def stored_results(tmp: Path, run_id: str) -> int:
    """Results of ``run_id`` in the CLI's store (0 while it is not created yet)."""
    try:
        path = tmp / "data" / "modelyard.db"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            query = "SELECT count(*) FROM eval_results WHERE run_id = ?"
            (count,) = db.execute(query, (run_id,)).fetchone()
    except sqlite3.OperationalError:  # the migrations have not run yet
        return 0
    return int(count)


@pytest.mark.integration
def test_an_interrupted_run_is_marked_and_resumes_without_repeating(server, fake, tmp_path):
    path = dataset(tmp_path, 20)
    gate = Gate("good-model", free=3)
    fake.script("slow-model", gate)
    args = ["run", str(path), "--deployments", "slow", "--url", server.url, "--run-id", "cut"]
    args += ["--concurrency", "1", "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-c", WITH_SIGINT, "eval", *args],
        env=cli_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert gate.holding.wait(300), "the run never reached its fourth case"
        wait_until(lambda: stored_results(tmp_path, "cut") == 3, "the first three results stored")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        gate.opened.set()  # the resumed run below goes straight through
    assert proc.returncode == 130, err
    assert "resume with --run-id cut" in err
    (run,) = orjson.loads(cli(tmp_path, "list", "--json").stdout)
    assert run["status"] == "interrupted" and run["results"] == 3
    partial = cli(tmp_path, "show", "cut")
    assert partial.returncode == 0 and "is interrupted" in partial.stderr

    done = stored_results(tmp_path, "cut")
    calls_before = len(fake.requests)
    resumed = cli(tmp_path, *args)
    assert resumed.returncode == 0, resumed.stderr
    # Only the cases not finished before the interruption were asked again.
    assert len(fake.requests) - calls_before == 20 - done
    (summary,) = orjson.loads(resumed.stdout)["summaries"]
    assert summary["calls"] == 20 and summary["errors"] == 0
    (run,) = orjson.loads(cli(tmp_path, "list", "--json").stdout)
    assert run["status"] == "done" and run["results"] == 20


@pytest.mark.integration
def test_unknown_deployment_is_an_error_per_case_not_a_crash(server, tmp_path):
    path = dataset(tmp_path, 3)
    done = cli(tmp_path, "run", str(path), "--deployments", "nope", "--url", server.url, "--json")
    assert done.returncode == 0, done.stderr
    (summary,) = orjson.loads(done.stdout)["summaries"]
    assert summary["errors"] == 3


@pytest.mark.integration
def test_a_refusal_is_recorded_as_one_and_graded_by_the_case(server, tmp_path):
    path = tmp_path / "safety.jsonl"
    cases = [
        {"id": "answered", "input": "hello there", "expected": "echo", "grader": "contains"},
        {"id": "refused", "input": "please refuse this", "expected": "x", "grader": "contains"},
        {
            "id": "expected-refusal",
            "input": "please refuse that",
            "expected": "x",
            "grader": "contains",
            "grader_options": {"on_refusal": "pass"},
        },
    ]
    path.write_text("\n".join(orjson.dumps(c).decode() for c in cases))
    args = [str(path), "--deployments", "careful", "--url", server.url, "--run-id", "refusals"]
    done = cli(tmp_path, "run", *args, "--json")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    (summary,) = report["summaries"]
    assert (summary["refusals"], summary["errors"]) == (2, 0)
    rows = {r["case_id"]: r for r in report["results"]}
    assert [rows[c]["refused"] for c in ("answered", "refused", "expected-refusal")] == [
        False,
        True,
        True,
    ]
    assert rows["refused"]["output"] == REFUSAL and not rows["refused"]["passed"]
    assert rows["refused"]["reason"].startswith("refused: ")
    assert rows["expected-refusal"]["passed"] and rows["answered"]["passed"]
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "modelyard.db")) as db:
        query = "SELECT case_id FROM eval_results WHERE run_id = 'refusals' AND refused"
        assert sorted(c for (c,) in db.execute(query)) == ["expected-refusal", "refused"]
    shown = cli(tmp_path, "show", "refusals")
    assert shown.returncode == 0, shown.stderr
    head, _, row = shown.stdout.splitlines()[2:5]
    assert head.split()[-4:-2] == ["errors", "refused"] and row.split()[-3:-1] == ["0", "2"]


@pytest.mark.slow  # nine CLI processes, each importing the package
def test_cli_errors_and_helpers(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "q", "expected": "x"}\n{"input": 3}\n')
    done = cli(tmp_path, "run", str(bad), "--deployments", "a")
    assert done.returncode == 2 and f"{bad}:2: input" in done.stderr
    missing = cli(tmp_path, "show", "missing")
    assert missing.returncode == 1 and "no run 'missing'" in missing.stderr
    too_long = cli(tmp_path, "run", "smoke", "--deployments", "a", "--run-id", "r" * 200)
    assert too_long.returncode == 2 and "longer than 128 characters" in too_long.stderr
    empty = cli(tmp_path, "list")
    assert empty.returncode == 0 and "no evaluation runs stored yet" in empty.stdout
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


@pytest.mark.integration
@pytest.mark.local_model
@pytest.mark.timeout(900)
def test_smoke_dataset_runs_on_the_embedded_local_model(server, tmp_path):
    # How long it takes is measured outside the tests (the closing notes give the figure); on a
    # loaded machine the model runs ten times slower, so the deadline only catches a hang.
    args = ["smoke", "--deployments", "local", "--url", server.url, "--concurrency", "1"]
    done = cli(tmp_path, "run", *args, "--json", timeout=840)
    assert done.returncode == 0, done.stderr
    (summary,) = orjson.loads(done.stdout)["summaries"]
    assert summary["calls"] == 11 and summary["errors"] == 0
    assert summary["output_tokens"] > 0
    assert 0 < summary["score"] <= 1  # a 135M model gets some of these right, not all
