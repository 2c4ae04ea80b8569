"""``modelyard projects|keys|usage|admin init`` in process, on SQLite in a temp data dir; keys
they make are checked against a server app on the same store (with its real key refresher)."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelyard.cli.main import main
from modelyard.server.app import create_app
from modelyard.services.usage_export import CSV_FIELDS
from modelyard.store import database_url, open_store
from modelyard.store.usage import INTERRUPTED, UsageLedger, UsageRecord, ledger_row
from tests.fakes.openai_upstream import FakeOpenAI

from .conftest import Admin, admin_settings, wait_for

SECRET = re.compile(r"^\s+(my-[a-z0-9]{12}-\S+)$", re.M)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    for name in ("MODELYARD_DATABASE_URL", "MODELYARD_CONFIG", "MODELYARD_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


def run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> tuple[str, str]:
    assert main(list(argv)) == code
    captured = capsys.readouterr()
    return captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    return json.loads(run(capsys, *argv, "--json")[0])


@pytest.fixture
def server(data: Path, upstream: FakeOpenAI) -> Iterator[Admin]:
    """A server on the CLI's store (no admin key in its environment)."""
    url = database_url(None, data)
    with TestClient(create_app(admin_settings(upstream.base_url), store_url=url)) as client:
        yield Admin(client)


def test_admin_init_prints_an_operator_key_once(
    data: Path, capsys: pytest.CaptureFixture[str], upstream: FakeOpenAI
):
    out, _ = run(capsys, "admin", "init")
    secret = SECRET.search(out)
    assert secret is not None and "only time" in out
    again_out, again_err = run(capsys, "admin", "init")
    assert again_out == "" and "exists already" in again_err
    forced = run_json(capsys, "admin", "init", "--force")
    assert forced["created"] is True and forced["role"] == "operator"
    keys = run_json(capsys, "keys", "list")
    assert [k["role"] for k in keys] == ["operator", "operator"]
    url = database_url(None, data)
    with TestClient(create_app(admin_settings(upstream.base_url), store_url=url)) as client:
        me = Admin(client).ok(secret.group(1), "GET", "/admin/v1/me")
        assert me["role"] == "operator" and me["key_id"] == keys[0]["id"]


def test_projects_create_and_list(data: Path, capsys: pytest.CaptureFixture[str]):
    out, _ = run(
        capsys, "projects", "create", "acme", "--description", "Acme", "--rpm", "60",
        "--tpm", "5000", "--budget-usd-day", "2.5", "--budget-usd-month", "40.000001",
    )  # fmt: skip
    assert "created project acme" in out and "$2.5/day" in out
    listed = run_json(capsys, "projects", "list")
    assert [(p["id"], p["rpm"], p["tpm"]) for p in listed] == [("acme", 60, 5000)]
    assert listed[0]["daily_budget_micros"] == 2_500_000
    assert listed[0]["monthly_budget_micros"] == 40_000_001
    assert "acme" in run(capsys, "projects", "list")[0]
    _, err = run(capsys, "projects", "create", "acme", code=2)
    assert "already exists" in err
    _, err = run(capsys, "projects", "create", "Not Valid", code=2)
    assert "not a project id" in err
    _, err = run(capsys, "projects", "create", "b", "--rpm", "0", code=2)
    assert "rpm" in err


def test_keys_create_list_revoke_act_on_a_running_server(
    server: Admin, capsys: pytest.CaptureFixture[str]
):
    run(capsys, "projects", "create", "team")
    out, _ = run(
        capsys, "keys", "create", "--project", "team", "--role", "owner", "--name", "ci",
        "--rpm", "100", "--tpm", "9000", "--budget-usd-month", "20", "--budget-usd-day", "1.25",
        "--deployments", "chat,other", "--expires", "30d",
    )  # fmt: skip
    found = SECRET.search(out)
    assert found is not None and "only time" in out
    secret = found.group(1)
    wait_for(lambda: server.chat(secret).status_code == 200)

    [key] = run_json(capsys, "keys", "list", "--project", "team")
    assert secret not in json.dumps(key) and "digest" not in key
    assert (key["role"], key["name"], key["deployments"]) == ("owner", "ci", ["chat", "other"])
    assert (key["rpm"], key["tpm"]) == (100, 9000)
    assert (key["monthly_budget_micros"], key["daily_budget_micros"]) == (20_000_000, 1_250_000)
    expires = datetime.fromisoformat(key["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    assert key["id"] in run(capsys, "keys", "list")[0]

    out, _ = run(capsys, "keys", "revoke", key["id"])
    assert "revoked" in out
    wait_for(lambda: server.chat(secret).status_code == 401)
    assert run_json(capsys, "keys", "list")[0]["status"] == "revoked"


def test_keys_errors(data: Path, capsys: pytest.CaptureFixture[str]):
    _, err = run(capsys, "keys", "create", "--project", "ghost", code=1)
    assert "no project 'ghost'" in err
    run(capsys, "projects", "create", "team")
    _, err = run(capsys, "keys", "create", "--project", "team", "--expires", "soon", code=2)
    assert "expires" in err
    _, err = run(
        capsys, "keys", "create", "--project", "team", "--budget-usd-month", "1.0000001", code=2
    )
    assert "up to 6 decimals" in err
    _, err = run(capsys, "keys", "create", "--project", "team", "--deployments", "nope")
    assert "'nope' is not in the config" in err  # a warning: the key is still made
    _, err = run(capsys, "keys", "revoke", "abcdefabcdef", code=1)
    assert "no key" in err
    _, err = run(capsys, "keys", "revoke", "bad", code=2)
    assert "not a key id" in err


def _record(project: str, key: str, model: str, at: datetime, cost: int) -> UsageRecord:
    return UsageRecord(
        request_id=f"req-{project}-{model}-{at.timestamp()}",
        created_at=at,
        day=at.date().isoformat(),
        project_id=project,
        key_id=key,
        endpoint="/v1/chat/completions",
        deployment="chat",
        provider="fake",
        model=model,
        status=200,
        stream=False,
        input_tokens=10,
        output_tokens=5,
        cached_input_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        cost_micros=cost,
        latency_ms=12.5,
        ttft_ms=None,
        attempts=1,
        usage_reported=True,
    )


def _seed_usage(data: Path) -> None:
    now = datetime.now(UTC)
    records = [
        _record("a", "keyaaaaaaaaa", "m1", now, 100),
        _record("a", "keyaaaaaaaaa", "m2", now - timedelta(hours=1), 250),
        _record("b", "keybbbbbbbbb", "m1", now - timedelta(days=10), 1_000_000),
    ]

    async def write() -> None:
        store = await open_store(database_url(None, data))
        try:
            async with store.transaction() as session:
                await UsageLedger(session).append([ledger_row(r) for r in records])
        finally:
            await store.aclose()

    asyncio.run(write())


def test_usage_grouped_filtered_and_exported(data: Path, capsys: pytest.CaptureFixture[str]):
    _seed_usage(data)
    report = run_json(capsys, "usage", "--by", "model")
    by_model = {r["model"]: (r["requests"], r["cost_micros"]) for r in report["data"]}
    assert by_model == {"m1": (2, 1_000_100), "m2": (1, 250)}
    assert report["totals"]["cost_usd"] == "1.00035"
    recent = run_json(capsys, "usage", "--by", "project", "--since", "7d")
    assert [(r["project"], r["requests"]) for r in recent["data"]] == [("a", 2)]
    only_b = run_json(capsys, "usage", "--project", "b", "--by", "day")
    assert only_b["totals"]["requests"] == 1

    table, _ = run(capsys, "usage", "--by", "key")
    assert "keyaaaaaaaaa" in table and "TOTAL" in table and "1.00035" in table
    grouped_csv, _ = run(capsys, "usage", "--by", "model", "--csv")
    rows = list(csv.reader(io.StringIO(grouped_csv)))
    assert rows[0][:2] == ["model", "requests"] and len(rows) == 3
    ledger_csv, _ = run(capsys, "usage", "--records", "--csv", "--key", "keyaaaaaaaaa")
    rows = list(csv.reader(io.StringIO(ledger_csv)))
    assert tuple(rows[0]) == CSV_FIELDS and len(rows) == 3
    ledger = run_json(capsys, "usage", "--records", "--until", "1d")
    assert [r["project_id"] for r in ledger] == ["b"]

    _, err = run(capsys, "usage", "--since", "last week", code=2)
    assert "since" in err
    _, err = run(capsys, "usage", "--json", "--csv", code=2)
    assert "one of --json and --csv" in err


def test_usage_with_nothing_recorded(data: Path, capsys: pytest.CaptureFixture[str]):
    out, _ = run(capsys, "usage")
    assert "no usage recorded" in out


def _steps_of(parent: str, at: datetime) -> list[UsageRecord]:
    """A response's ledger rows: two model calls around one tool step that carries its
    sizes, and one tool step written before revision 0016 (no sizes)."""
    model = _record("a", "keyaaaaaaaaa", "m1", at, 100)
    tool = dataclasses.replace(model, endpoint="mcp_call", provider="mcp:calc", model="add",
                               input_tokens=0, output_tokens=0, cost_micros=0)  # fmt: skip
    return [
        dataclasses.replace(model, request_id="req-s", parent_id=parent),
        dataclasses.replace(
            tool, request_id="req-s.t1", parent_id=parent, bytes_in=17, bytes_out=2
        ),
        dataclasses.replace(tool, request_id="req-s.t2", parent_id=parent, status=424),
        dataclasses.replace(
            model, request_id="req-s.1", parent_id=parent, created_at=at + timedelta(seconds=1)
        ),
    ]


def test_usage_steps_show_each_tool_steps_bytes(data: Path, capsys: pytest.CaptureFixture[str]):
    records = _steps_of("resp_1", datetime.now(UTC))

    async def write() -> None:
        store = await open_store(database_url(None, data))
        try:
            async with store.transaction() as session:
                await UsageLedger(session).append([ledger_row(r) for r in records])
        finally:
            await store.aclose()

    asyncio.run(write())
    tree, _ = run(capsys, "usage", "--steps", "resp_1")
    lines = tree.splitlines()
    assert lines[0].startswith("resp_1  2 model call(s), 2 tool call(s), 20 in / 10 out tokens")
    assert "req-s.t1  tool  calc/add  17 B in / 2 B out  200  12.5 ms" in lines[2]
    assert lines[3].endswith("req-s.t2  tool  calc/add  424  12.5 ms")  # no sizes: not shown
    assert "B in" not in lines[1] and "B in" not in lines[4]  # model calls: tokens only
    shown = run_json(capsys, "usage", "--steps", "resp_1")
    sizes = [(s["kind"], s["bytes_in"], s["bytes_out"]) for s in shown["steps"]]
    assert sizes == [("model", None, None), ("tool", 17, 2), ("tool", None, None),
                     ("model", None, None)]  # fmt: skip
    ledger_csv, _ = run(capsys, "usage", "--records", "--csv")
    rows = [dict(zip(CSV_FIELDS, row, strict=True)) for row in csv.reader(io.StringIO(ledger_csv))]
    assert [(r["request_id"], r["bytes_in"], r["bytes_out"]) for r in rows[1:]] == [
        ("req-s", "", ""), ("req-s.t1", "17", "2"), ("req-s.t2", "", ""), ("req-s.1", "", ""),
    ]  # fmt: skip
    _, err = run(capsys, "usage", "--steps", "resp_2", code=1)
    assert "no ledger steps of 'resp_2'" in err


def test_an_interrupted_request_is_named_by_status_and_in_the_errors(
    data: Path, capsys: pytest.CaptureFixture[str]
):
    """A request whose process was killed (recorded from the journal, ``store/journal.py``)."""
    now = datetime.now(UTC)
    done = _record("a", "keyaaaaaaaaa", "m1", now, 100)
    cut = dataclasses.replace(done, request_id="req-cut", status=INTERRUPTED,
                              output_tokens=0, provider=None, model=None, cost_micros=None,
                              parent_id="resp_9")  # fmt: skip

    async def write() -> None:
        store = await open_store(database_url(None, data))
        try:
            async with store.transaction() as session:
                await UsageLedger(session).append([ledger_row(done), ledger_row(cut)])
        finally:
            await store.aclose()

    asyncio.run(write())
    table, _ = run(capsys, "usage", "--by", "status")
    assert [line.split()[:4] for line in table.splitlines()[1:3]] == [
        ["200", "1", "0", "10"], ["599", "interrupted", "1", "1"],
    ]  # fmt: skip
    report = run_json(capsys, "usage", "--by", "project")
    assert (report["totals"]["requests"], report["totals"]["errors"]) == (2, 1)
    tree, _ = run(capsys, "usage", "--steps", "resp_9")
    assert "req-cut" in tree and "599 interrupted" in tree
