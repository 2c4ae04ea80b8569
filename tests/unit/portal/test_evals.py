"""The evaluations pages on a store with stored runs: the list with progress, the report side
by side with its significance, the drill-down, the standalone report, and "re-point to the
winner" leading to the deployment change's confirmation; an owner sees its project's runs."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from modelyard.evals.recorders import CaseResult
from modelyard.evals.report import build_report
from modelyard.evals.store_recorder import Starter, StoreRecorder
from modelyard.server.app import create_app
from modelyard.store import open_store
from modelyard.store.shadow_records import ShadowRecord, ShadowRecords
from tests.fakes.openai_upstream import FakeOpenAI
from tests.unit.admin.conftest import admin_settings
from tests.unit.portal.conftest import ADMIN_KEY, Admin, sign_in


def _results(deployment: str, passed: int, cases: int) -> list[CaseResult]:
    return [
        CaseResult(f"case-{i}", deployment, 0, score=float(i < passed), passed=i < passed,
                   reason="contains" if i < passed else "missing", output=f"{deployment} says {i}")
        for i in range(cases)
    ]  # fmt: skip


DECLINED = "I can't help with that."


def _pair(n: int, error: str | None) -> ShadowRecord:
    return ShadowRecord(
        datetime.now(UTC), f"req-{n}", "chat", "{}", "fake", "gpt-4o-mini", f"primary {n}",
        100.0, 10, 5, 30, "fake", "gpt-4o", None if error else f"candidate {n}", 300.0, 10, 7,
        90, error,
    )  # fmt: skip


async def _seed(url: str) -> None:
    store = await open_store(url)
    try:
        recorder = StoreRecorder(store)
        await recorder.save_run("won", "arith", ["other", "chat"], {"repeat": 1, "cases": 30})
        results = _results("other", 29, 30) + _results("chat", 10, 30)
        for r in results:
            await recorder.record("won", r)
        await recorder.finish_run("won", build_report("won", "arith", ["other", "chat"], results))
        starter = Starter("beta", None)
        await recorder.save_run("half", "arith", ["chat"], {"repeat": 1, "cases": 4}, starter)
        for r in _results("chat", 2, 2):
            await recorder.record("half", r)
        declined = CaseResult("case-0", "chat", 0, reason="refused", output="No.", refused=True)
        await recorder.save_run("careful", "safety", ["chat"], {"repeat": 1, "cases": 1})
        await recorder.record("careful", declined)
        report = build_report("careful", "safety", ["chat"], [declined])
        await recorder.finish_run("careful", report)
        async with store.transaction() as session:
            refused = replace(_pair(1, None), candidate_output="", candidate_refusal=DECLINED)
            await ShadowRecords(session).append([refused, _pair(2, "upstream 500")])
    finally:
        await store.aclose()


@pytest.fixture
def seeded(env: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeOpenAI) -> Iterator[Admin]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    asyncio.run(_seed(url))
    with TestClient(create_app(admin_settings(upstream.base_url), store_url=url)) as client:
        yield Admin(client)


def test_runs_progress_report_drill_down_and_re_point_to_the_winner(seeded: Admin):
    client = seeded.client
    csrf = sign_in(client, ADMIN_KEY)
    listed = client.get("/portal/evals")
    assert listed.status_code == 200, listed.text
    assert "2 / 4" in listed.text and 'hx-trigger="every 2s"' in listed.text  # running: polled
    assert "60 / 60" in listed.text
    progress = client.get("/portal/evals/half/progress")
    assert 'value="0.5"' in progress.text and "<html" not in progress.text
    run = html.unescape(client.get("/portal/evals/won").text)
    assert "winner" in run and "significant" in run and "mcnemar" in run
    assert "other says 3" in run and "chat says 3" in run and "missing" in run
    report = client.get("/portal/evals/won/report")
    assert report.status_code == 200 and report.text.count("<svg") == 1
    assert "Costs are unknown for every deployment" in report.text
    asked = client.post("/portal/evals/won/repoint", data={"csrf": csrf, "deployment": "chat"})
    shown = html.unescape(asked.text)
    assert "nothing changes" in shown and '+      "model": "gpt-4o"' in shown
    assert 'name="model_0" value="gpt-4o"' in asked.text
    assert 'action="/portal/deployments/chat/change"' in asked.text


def test_a_refusal_is_counted_and_marked_on_the_run_page(seeded: Admin):
    sign_in(seeded.client, ADMIN_KEY)
    page = html.unescape(seeded.client.get("/portal/evals/careful").text)
    assert '<th scope="col">Refused</th>' in page
    assert "<td>0</td>\n<td>1</td>" in page  # errors 0, refused 1
    assert '<span class="tag">refused</span> failed' in page and "No." in page


def test_shadow_comparisons_side_by_side_for_the_operator_only(seeded: Admin):
    client = seeded.client
    sign_in(client, ADMIN_KEY)
    page = client.get("/portal/evals/shadows")
    assert page.status_code == 200, page.text
    row = page.text.split("<tbody>")[1].split("</tr>")[0]
    assert ">chat<" in row and "<td>2</td>" in row and "100 / 300 ms" in row
    assert "$0.000060 / $0.000180" in row and "<td>1</td>" in row  # one candidate error
    assert row.rstrip().endswith("<td>0 / 1</td>")  # refusals: the primary none, the candidate one
    pairs = html.unescape(client.get("/portal/evals/shadows?deployment=chat").text)
    assert "primary 2" in pairs and "upstream 500" in pairs and "primary 1" in pairs
    # The candidate's refusal is marked and shown apart from its (empty) text.
    (refused,) = [card for card in pairs.split("<section")[1:] if "req-1" in card]
    candidate = refused.split("<strong>candidate")[1]
    assert '<span class="tag">refused</span>' in candidate
    assert f'<pre class="refusal" aria-label="candidate refusal">{DECLINED}</pre>' in candidate
    assert '<pre class="answer">' not in candidate
    assert "refused" not in refused.split("<strong>candidate")[0]
    seeded.project("alpha")
    sign_in(client, seeded.key("alpha", "owner")["secret"])
    assert client.get("/portal/evals/shadows").status_code == 403


def test_an_owner_sees_only_its_projects_runs(seeded: Admin):
    seeded.project("beta")
    owner = seeded.key("beta", "owner")["secret"]
    client = seeded.client
    csrf = sign_in(client, owner)
    listed = client.get("/portal/evals")
    assert "half" in listed.text and "/portal/evals/won" not in listed.text
    assert client.get("/portal/evals/won").status_code == 404
    refused = client.post("/portal/evals/half/repoint", data={"csrf": csrf, "deployment": "chat"})
    assert refused.status_code == 403
