"""``GET /admin/v1/evals/runs`` and ``/runs/{id}`` on a real app with a SQLite store: roles,
pagination, partial reports of unfinished runs, errors in the OpenAI shape, 503 without a store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from starlette.testclient import TestClient

from modelyard.config.schema import Settings
from modelyard.evals.runner import RunOptions, run_eval
from modelyard.evals.store_recorder import Starter, StoreRecorder
from modelyard.server.admin_routes import openapi_document
from modelyard.server.app import create_app
from modelyard.store import open_store
from modelyard.store.tenancy import Tenancy
from modelyard.tenancy.keys import new_key
from modelyard.tenancy.model import ApiKey, Limits, Project
from tests.unit.evals.fakes import FakeCaller, arithmetic

ADMIN_KEY = "operator-secret-for-eval-admin-tests"
RUNS = "/admin/v1/evals/runs"


@dataclass
class Seeded:
    client: TestClient
    keys: dict[str, str]  # role name -> secret

    def get(self, key: str | None, path: str, **params: Any) -> Any:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return self.client.get(path, headers=headers, params=params)

    def ok(self, who: str, path: str, **params: Any) -> Any:
        response = self.get(self.keys[who], path, **params)
        assert response.status_code == 200, response.text
        return response.json()


def _settings() -> Settings:
    return Settings.model_validate({"local": {"enabled": False}})


async def _seed(url: str) -> dict[str, str]:
    """Projects acme and other; an owner and two members of acme, a member of other; three
    runs: done (acme's member m1), interrupted (other), running (no project)."""
    store = await open_store(url)
    now = datetime.now(UTC)
    secrets: dict[str, str] = {}
    try:
        async with store.transaction() as session:
            tenancy = Tenancy(session)
            for project in ("acme", "other"):
                await tenancy.add_project(Project(project, None, Limits(), now))
            for name, role, project in [
                ("owner", "owner", "acme"),
                ("m1", "member", "acme"),
                ("m2", "member", "acme"),
                ("stranger", "member", "other"),
            ]:
                fresh = new_key()
                secrets[name] = fresh.secret
                secrets[f"{name}-id"] = fresh.id
                key = ApiKey(
                    fresh.id, fresh.digest, role, project, name, None, Limits(), None, None, now
                )
                await tenancy.add_key(key)
        recorder = StoreRecorder(store)
        dataset = arithmetic(12)
        await recorder.save_run(
            "done", "arithmetic", ["good", "bad"], {"repeat": 1}, Starter("acme", secrets["m1-id"])
        )
        report = await run_eval(
            dataset, ["good", "bad"], FakeCaller(), recorder=recorder, options=RunOptions("done")
        )
        await recorder.finish_run("done", report)
        await recorder.save_run(
            "stopped",
            "arithmetic",
            ["good"],
            {"repeat": 1},
            Starter("other", secrets["stranger-id"]),
        )
        await run_eval(
            arithmetic(3), ["good"], FakeCaller(), recorder=recorder, options=RunOptions("stopped")
        )
        await recorder.finish_run("stopped", None, "interrupted")
        await recorder.save_run("live", "arithmetic", ["bad"])
    finally:
        await store.aclose()
    return secrets


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Seeded]:
    monkeypatch.setenv("MODELYARD_ADMIN_KEY", ADMIN_KEY)
    for name in ("MODELYARD_REDIS_URL", "MODELYARD_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    keys = asyncio.run(_seed(url))
    keys["operator"] = ADMIN_KEY
    with TestClient(create_app(_settings(), store_url=url)) as client:
        yield Seeded(client, keys)


def test_the_operator_lists_every_run_newest_first_with_pages(seeded: Seeded):
    listed = seeded.ok("operator", RUNS)
    assert [r["id"] for r in listed["data"]] == ["live", "stopped", "done"]
    assert listed["total"] == 3 and listed["has_more"] is False
    by_id = {r["id"]: r for r in listed["data"]}
    assert by_id["done"]["status"] == "done" and by_id["done"]["best"] == "good"
    assert by_id["done"]["results"] == 24 and by_id["done"]["project"] == "acme"
    assert by_id["stopped"]["status"] == "interrupted" and by_id["stopped"]["results"] == 3
    assert by_id["live"]["status"] == "running" and by_id["live"]["finished_at"] is None
    page = seeded.ok("operator", RUNS, limit=1, offset=1)
    assert [r["id"] for r in page["data"]] == ["stopped"]
    assert (page["total"], page["limit"], page["offset"], page["has_more"]) == (3, 1, 1, True)


def test_a_run_shows_its_report_and_a_page_of_results(seeded: Seeded):
    shown = seeded.ok("operator", f"{RUNS}/done", limit=5, offset=20)
    assert shown["id"] == "done" and shown["deployments"] == ["good", "bad"]
    assert shown["report"]["best"] == "good" and "results" not in shown["report"]
    assert {s["deployment"] for s in shown["report"]["summaries"]} == {"good", "bad"}
    page = shown["results"]
    assert page["total"] == 24 and len(page["data"]) == 4 and page["has_more"] is False
    first = page["data"][0]
    assert {"case_id", "deployment", "repeat", "score", "passed", "output", "cost_micros"} <= set(
        first
    )
    everything = seeded.ok("operator", f"{RUNS}/done", limit=1000)["results"]["data"]
    assert len({(r["case_id"], r["deployment"]) for r in everything}) == 24
    assert everything[20:24] == page["data"]


def test_an_unfinished_run_shows_the_report_of_its_results_so_far(seeded: Seeded):
    stopped = seeded.ok("operator", f"{RUNS}/stopped")
    assert stopped["status"] == "interrupted"
    (summary,) = stopped["report"]["summaries"]
    assert summary["deployment"] == "good" and summary["calls"] == 3
    live = seeded.ok("operator", f"{RUNS}/live")
    assert live["report"]["summaries"] == [] and live["results"]["data"] == []


def test_owners_see_their_project_and_members_their_own_key(seeded: Seeded):
    assert [r["id"] for r in seeded.ok("owner", RUNS)["data"]] == ["done"]
    assert [r["id"] for r in seeded.ok("m1", RUNS)["data"]] == ["done"]
    assert seeded.ok("m2", RUNS)["data"] == []
    assert [r["id"] for r in seeded.ok("stranger", RUNS)["data"]] == ["stopped"]
    assert seeded.ok("owner", f"{RUNS}/done")["id"] == "done"
    # Another project's run, or another member's, is not found rather than forbidden.
    for who, run in [("stranger", "done"), ("m2", "done"), ("owner", "stopped"), ("owner", "live")]:
        response = seeded.get(seeded.keys[who], f"{RUNS}/{run}")
        assert response.status_code == 404, (who, run)
        assert response.json()["error"]["code"] == "eval_run_not_found"


def test_errors_are_in_the_openai_shape(seeded: Seeded):
    missing = seeded.get(ADMIN_KEY, f"{RUNS}/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    assert missing.headers["x-request-id"]
    cases: list[tuple[dict[str, object], str]] = [
        ({"limit": 0}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"limit": 201}, "limit"),
        ({"sort": "id"}, "sort"),
    ]
    for params, name in cases:
        bad = seeded.get(ADMIN_KEY, RUNS, **params)
        assert bad.status_code == 400, params
        assert bad.json()["error"]["param"] == name
        assert bad.json()["error"]["type"] == "invalid_request_error"
    assert seeded.get(None, RUNS).status_code == 401
    assert seeded.get("my-wrong-key", RUNS).status_code == 401


def test_without_a_store_the_routes_answer_503(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MODELYARD_ADMIN_KEY", ADMIN_KEY)
    settings = Settings.model_validate(
        {"local": {"enabled": False}, "server": {"api_keys": ["plain-key"]}}
    )
    with TestClient(create_app(settings)) as client:
        # No store at all: 503 for the operator, in the OpenAI shape.
        response = client.get(RUNS, headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "no_store"
        anonymous = client.get(RUNS)
        assert anonymous.status_code == 401


def test_a_config_member_key_is_forbidden_with_a_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("MODELYARD_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.delenv("MODELYARD_DATABASE_URL", raising=False)
    settings = Settings.model_validate(
        {"local": {"enabled": False}, "server": {"api_keys": ["plain-key"]}}
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    with TestClient(create_app(settings, store_url=url)) as client:
        response = client.get(RUNS, headers={"authorization": "Bearer plain-key"})
        assert response.status_code == 403
        assert response.json()["error"]["type"] == "permission_error"


def test_the_openapi_paths_describe_both_routes():
    paths = {k: v for k, v in openapi_document()["paths"].items() if "/evals/" in k}
    assert set(paths) == {RUNS, f"{RUNS}/{{run_id}}"}
    listed = paths[RUNS]["get"]
    assert {p["name"] for p in listed["parameters"] if p["in"] != "header"} == {"limit", "offset"}
    one = paths[f"{RUNS}/{{run_id}}"]["get"]
    names = {p["name"] for p in one["parameters"] if p["in"] != "header"}
    assert names == {"run_id", "limit", "offset"}
    assert {"200", "400", "401", "403", "404", "503"} <= set(one["responses"])


def _conforms(body: Any, component: str) -> bool:
    # The schema validator schemathesis itself uses (a dependency of it).
    doc = openapi_document()
    schema = {"$ref": f"#/components/schemas/{component}", "components": doc["components"]}
    return bool(jsonschema_rs.Draft202012Validator(schema).is_valid(body))


def test_the_answers_conform_to_the_generated_document(seeded: Seeded):
    """A run with results (which the fuzzer, guessing ids, never finds) against its schema."""
    assert _conforms(seeded.ok("operator", RUNS), "EvalRunList")
    shown = seeded.ok("operator", f"{RUNS}/done", limit=3)
    assert _conforms(shown, "EvalRunDetail")
    assert len(shown["results"]["data"]) == 3
    assert not _conforms({**shown, "results": 24}, "EvalRunDetail")
    assert not _conforms({**shown, "status": "paused"}, "EvalRunDetail")
