"""The audit log through the real app: every admin change is recorded once with who, when,
from where, before and after (never a secret), readable by the operator only, with filters,
and exported as JSON lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelyard.cli.main import main
from modelyard.server.admin_evals import EVAL_OPERATIONS
from modelyard.server.admin_routes import OPERATIONS

from .conftest import ADMIN_KEY, Admin

P = "/admin/v1"


def _log(admin: Admin, **query: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = admin.ok(ADMIN_KEY, "GET", P + "/audit", params=query)["data"]
    return entries


def test_every_change_is_recorded_with_before_and_after(admin: Admin):
    admin.project("acme", rpm=10)
    new = admin.key("acme", role="owner", rpm=5)
    admin.ok(ADMIN_KEY, "PATCH", f"{P}/keys/{new['id']}", json={"rpm": 3})
    admin.ok(ADMIN_KEY, "POST", f"{P}/keys/{new['id']}/revoke")
    admin.ok(ADMIN_KEY, "PATCH", f"{P}/projects/acme", json={"rpm": 20})
    entries = _log(admin)
    assert [(e["kind"], e["target"]) for e in entries] == [
        ("project.create", "acme"),
        ("key.create", new["id"]),
        ("key.update", new["id"]),
        ("key.revoke", new["id"]),
        ("project.update", "acme"),
    ]
    assert {e["actor"] for e in entries} == {"key:admin-env"}
    assert {e["client"] for e in entries} == {"testclient"}  # starlette's TestClient's address
    created, patched, revoked, project = entries[1], entries[2], entries[3], entries[4]
    assert created["before"] is None and created["after"]["rpm"] == 5
    assert (patched["before"]["rpm"], patched["after"]["rpm"]) == (5, 3)
    assert (revoked["before"]["status"], revoked["after"]["status"]) == ("active", "revoked")
    assert (project["before"]["rpm"], project["after"]["rpm"]) == (10, 20)
    assert all(e["request_id"] for e in entries)
    assert new["secret"] not in orjson.dumps(entries).decode()  # the secret is never kept
    assert "secret" not in created["after"] and "digest" not in created["after"]


def test_a_refused_change_is_not_recorded(admin: Admin):
    admin.project("acme")
    assert admin.call(ADMIN_KEY, "POST", P + "/projects", json={"id": "acme"}).status_code == 409
    assert admin.call(ADMIN_KEY, "PATCH", P + "/keys/nosuchkey123", json={}).status_code == 404
    assert [e["kind"] for e in _log(admin)] == ["project.create"]


def test_the_log_is_filtered_paged_and_for_the_operator_only(admin: Admin):
    admin.project("acme")
    owner = admin.key("acme", role="owner")
    member = admin.ok(
        owner["secret"], "POST", P + "/keys", json={"role": "member", "project": "acme"}
    )
    assert [e["actor"] for e in _log(admin, kind="key.create")] == [
        "key:admin-env",
        f"key:{owner['id']}",
    ]
    assert [e["target"] for e in _log(admin, actor=f"key:{owner['id']}")] == [member["id"]]
    assert [e["kind"] for e in _log(admin, kind="project.")] == ["project.create"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert _log(admin, since=future) == []
    page = admin.ok(ADMIN_KEY, "GET", P + "/audit", params={"limit": 2})
    assert len(page["data"]) == 2 and page["next_after"] == page["data"][1]["seq"]
    rest = admin.ok(ADMIN_KEY, "GET", P + "/audit", params={"after": page["next_after"]})
    assert [e["target"] for e in rest["data"]] == [member["id"]] and rest["next_after"] is None
    for path in ("/audit", "/audit.jsonl"):
        refused = admin.call(owner["secret"], "GET", P + path)
        assert refused.status_code == 403, path
    bad = admin.call(ADMIN_KEY, "GET", P + "/audit", params={"kind": "Key Create"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "kind"


def test_the_log_exports_as_json_lines(admin: Admin):
    admin.project("acme")
    admin.key("acme")
    response = admin.call(ADMIN_KEY, "GET", P + "/audit.jsonl")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in response.text.splitlines()]
    assert [line["kind"] for line in lines] == ["project.create", "key.create"]
    assert lines == _log(admin)
    doc = admin.call(None, "GET", P + "/openapi.json").json()
    answer = doc["paths"][P + "/audit.jsonl"]["get"]["responses"]["200"]
    assert list(answer["content"]) == ["application/x-ndjson"]


def test_every_write_operation_is_audited():
    for op in (*OPERATIONS, *EVAL_OPERATIONS):
        assert (op.audit_kind is None) == (op.method == "GET"), op.path


def test_the_cli_lists_and_exports_the_log(
    admin: Admin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    admin.project("acme")
    key = admin.key("acme")
    monkeypatch.setenv("MODELYARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    monkeypatch.delenv("MODELYARD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["audit", "list", "--json", "--kind", "key."]) == 0
    listed = orjson.loads(capsys.readouterr().out)
    assert [(e["kind"], e["target"]) for e in listed] == [("key.create", key["id"])]
    assert main(["audit", "list", "--actor", "key:admin-env"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "project.create" in lines[0] and "from testclient" in lines[0]
    out = tmp_path / "audit.jsonl"
    assert main(["audit", "export", "--output", str(out)]) == 0
    exported = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert exported == _log(admin)
    assert main(["audit", "list", "--kind", "Bad Kind"]) == 2
    assert "--kind" in capsys.readouterr().err


def test_the_clis_own_changes_are_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    for name in ("MODELYARD_DATABASE_URL", "MODELYARD_CONFIG", "MODELYARD_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("USER", "ops-alice")  # getpass reads it first
    monkeypatch.chdir(tmp_path)
    assert main(["projects", "create", "acme", "--rpm", "10", "--json"]) == 0
    capsys.readouterr()
    assert main(["keys", "create", "--project", "acme", "--json"]) == 0
    made = orjson.loads(capsys.readouterr().out)
    assert main(["keys", "revoke", made["id"]]) == 0
    capsys.readouterr()
    assert main(["audit", "list", "--json"]) == 0
    entries = orjson.loads(capsys.readouterr().out)
    assert [(e["actor"], e["kind"], e["target"]) for e in entries] == [
        ("cli:ops-alice", "project.create", "acme"),
        ("cli:ops-alice", "key.create", made["id"]),
        ("cli:ops-alice", "key.revoke", made["id"]),
    ]
    assert entries[0]["after"]["rpm"] == 10 and entries[2]["after"]["status"] == "revoked"
    assert {e["client"] for e in entries} == {None}
    assert made["secret"] not in orjson.dumps(entries).decode()
