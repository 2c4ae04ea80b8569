"""Evaluations in the browser: a run made by ``modelyard eval run`` against the served
gateway (same data directory, so the same store), listed with its progress, its report side
by side and per case, its standalone report drawn, and the re-point to the winner confirmed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import ADMIN_KEY, Gateway, shoot, sign_in

CASES = [{"id": f"word-{w}", "input": f"Repeat: {w}", "expected": w, "grader": "contains"}
         for w in ("apple", "river", "stone", "cloud", "lamp", "green")]  # fmt: skip


def _eval_run(gateway: Gateway) -> None:
    tmp = gateway.server.log_path.parent
    dataset = tmp / "words.jsonl"
    dataset.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    env = {**os.environ, "MODELYARD_DATA_DIR": str(tmp / "data")}
    for name in ("MODELYARD_CONFIG", "MODELYARD_DATABASE_URL"):
        env.pop(name, None)
    args = [str(dataset), "--deployments", "live,other", "--url", gateway.url]
    args += ["--api-key", ADMIN_KEY, "--run-id", "browser-run", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "eval", "run", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_an_evaluation_run_its_report_and_the_re_point_to_the_winner(
    browser: BrowserContext, gateway: Gateway
):
    _eval_run(gateway)
    page = browser.new_page()
    sign_in(page, gateway, ADMIN_KEY)
    page.get_by_role("link", name="Evaluations").click()
    expect(page.get_by_role("link", name="browser-run")).to_be_visible()
    expect(page.get_by_role("progressbar")).to_have_attribute("value", "1.0")
    shoot(page, "evals")
    page.get_by_role("link", name="browser-run").click()
    expect(page.get_by_role("region", name="Case word-apple")).to_contain_text("passed")
    expect(page.get_by_role("img", name="Score: 2 bars, highest 1.000")).to_be_visible()
    shoot(page, "eval-run")
    page.get_by_role("button", name="Review the change").click()
    expect(page.get_by_test_id("clients")).to_contain_text("For clients nothing changes")
    shoot(page, "eval-repoint")
    page.goto(f"{gateway.url}/portal/evals/browser-run/report")
    bars = page.locator('svg[aria-label="scores"] rect')
    expect(bars).to_have_count(2)
