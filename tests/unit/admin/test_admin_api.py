"""The admin API through the real app: authentication, the role matrix, validation, limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from modelyard.server.admin_evals import ROUTES as EVAL_ROUTES
from modelyard.server.admin_routes import ROUTES
from modelyard.server.app import create_app
from tests.fakes.openai_upstream import FakeOpenAI

from .conftest import ADMIN_KEY, Admin, admin_settings

P = "/admin/v1"


def test_no_key_or_a_wrong_key_is_401_everywhere(admin: Admin):
    for path in ("/me", "/projects", "/keys", "/deployments", "/usage", "/usage.csv"):
        missing = admin.call(None, "GET", P + path)
        assert missing.status_code == 401, path
        assert missing.json()["error"]["code"] == "missing_api_key"
        wrong = admin.call("my-aaaaaaaaaaaa-" + "x" * 40, "GET", P + path)
        assert wrong.status_code == 401
        assert wrong.json()["error"] == {
            "message": "invalid API key",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_api_key",
        }


def test_me_names_the_bootstrap_operator(admin: Admin):
    me = admin.ok(ADMIN_KEY, "GET", P + "/me")
    assert (me["role"], me["key_id"], me["project"]) == ("operator", "admin-env", None)


def test_openapi_document_is_public_and_covers_every_route(admin: Admin):
    response = admin.call(None, "GET", P + "/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in doc["paths"].items() for method in item}
    served = {
        (route.path, method)
        for route in [*ROUTES, *EVAL_ROUTES]
        for method in (route.methods or ())
        if method != "HEAD"
    }
    assert served == documented
    for name in ("ProjectCreate", "Patch", "KeyCreate"):
        assert doc["components"]["schemas"][name]["additionalProperties"] is False
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_projects_are_created_once(admin: Admin):
    created = admin.project("acme", description="Acme", rpm=60, monthly_budget_usd="250.5")
    assert created["id"] == "acme" and created["description"] == "Acme"
    assert created["monthly_budget_micros"] == 250_500_000
    assert created["monthly_budget_usd"] == "250.5"
    again = admin.call(ADMIN_KEY, "POST", P + "/projects", json={"id": "acme"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "project_exists"
    listed = admin.ok(ADMIN_KEY, "GET", P + "/projects")["data"]
    assert [p["id"] for p in listed] == ["acme"]
    assert admin.ok(ADMIN_KEY, "GET", P + "/projects/acme")["rpm"] == 60
    missing = admin.call(ADMIN_KEY, "GET", P + "/projects/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "project_not_found"


@pytest.fixture
def tenants(admin: Admin) -> dict[str, str]:
    """Projects a and b; owner and member keys of a, owner of b; their secrets by name."""
    admin.project("a")
    admin.project("b")
    keys = {
        "owner_a": admin.key("a", "owner"),
        "member_a": admin.key("a", "member", deployments=["chat"]),
        "owner_b": admin.key("b", "owner"),
    }
    secrets = {name: k["secret"] for name, k in keys.items()}
    secrets.update({f"{name}_id": k["id"] for name, k in keys.items()})
    secrets["operator"] = ADMIN_KEY
    # The refresher installs new keys within its interval; wait until the last one works.
    from .conftest import wait_for

    wait_for(lambda: admin.call(secrets["owner_b"], "GET", P + "/me").status_code == 200)
    return secrets


def _matrix(t: dict[str, str]) -> list[tuple[str, str, str, Any, int]]:
    member = t["member_a_id"]
    return [
        ("owner_a", "POST", "/projects", {"id": "c"}, 403),
        ("member_a", "POST", "/projects", {"id": "c"}, 403),
        ("operator", "POST", "/projects", {"id": "c"}, 201),
        ("owner_a", "GET", "/projects/a", None, 200),
        ("member_a", "GET", "/projects/a", None, 200),
        ("owner_b", "GET", "/projects/a", None, 403),
        ("owner_a", "PATCH", "/projects/a", {"rpm": 1000}, 403),
        ("operator", "PATCH", "/projects/a", {"rpm": 1000}, 200),
        ("owner_a", "POST", "/keys", {"project": "a"}, 201),
        ("member_a", "POST", "/keys", {"project": "a"}, 403),
        ("owner_b", "POST", "/keys", {"project": "a"}, 403),
        ("owner_a", "POST", "/keys", {"role": "operator"}, 403),
        ("owner_a", "GET", "/keys?project=a", None, 200),
        ("member_a", "GET", "/keys?project=a", None, 403),
        ("owner_b", "GET", "/keys?project=a", None, 403),
        ("member_a", "GET", "/keys", None, 403),
        ("owner_a", "GET", f"/keys/{member}", None, 200),
        ("owner_b", "GET", f"/keys/{member}", None, 403),
        ("member_a", "GET", f"/keys/{member}", None, 403),
        ("owner_b", "PATCH", f"/keys/{member}", {"rpm": 5}, 403),
        ("owner_a", "PATCH", f"/keys/{member}", {"rpm": 5}, 200),
        ("owner_b", "POST", f"/keys/{member}/revoke", None, 403),
        ("member_a", "DELETE", f"/keys/{member}", None, 403),
        ("member_a", "GET", "/usage", None, 200),
        ("member_a", "GET", f"/usage?key={t['owner_a_id']}", None, 403),
        ("member_a", "GET", "/usage?project=b", None, 403),
        ("owner_b", "GET", "/usage?project=a", None, 403),
        ("owner_a", "GET", "/usage?project=a&by=key", None, 200),
        ("owner_b", "GET", "/usage.csv?project=a", None, 403),
        ("member_a", "GET", "/deployments", None, 200),
    ]


def test_role_matrix(admin: Admin, tenants: dict[str, str]):
    wrong = []
    for who, method, path, body, expected in _matrix(tenants):
        got = admin.call(tenants[who], method, P + path, json=body).status_code
        if got != expected:
            wrong.append(f"{who} {method} {path}: {got}, expected {expected}")
    assert not wrong


def test_each_role_sees_only_its_own(admin: Admin, tenants: dict[str, str]):
    as_owner = admin.ok(tenants["owner_a"], "GET", P + "/projects")["data"]
    assert [p["id"] for p in as_owner] == ["a"]
    assert len(admin.ok(tenants["operator"], "GET", P + "/projects")["data"]) == 2
    # Without ?project an owner gets its own project's keys.
    own = admin.ok(tenants["owner_a"], "GET", P + "/keys")["data"]
    assert {k["project"] for k in own} == {"a"} and len(own) == 2
    member = admin.ok(tenants["member_a"], "GET", P + "/me")
    assert (member["role"], member["project"], member["deployments"]) == ("member", "a", ["chat"])
    # A member restricted to one deployment reads only that one.
    names = [d["name"] for d in admin.ok(tenants["member_a"], "GET", P + "/deployments")["data"]]
    assert names == ["chat"]
    everything = admin.ok(tenants["operator"], "GET", P + "/deployments")["data"]
    assert [d["name"] for d in everything] == ["chat", "other"]
    assert everything[1]["targets"] == [{"provider": "fake", "model": "gpt-4o", "weight": 1.0}]
    assert everything[1]["strategy"] == "failover" and everything[1]["shadow"] is None


def test_keys_never_show_a_digest_and_the_secret_only_once(admin: Admin):
    admin.project("a")
    created = admin.key("a", name="ci", expires_in="30d")
    assert created["secret"].startswith(f"my-{created['id']}-")
    assert "only time" in created["warning"]
    assert created["status"] == "active" and created["expires_at"] is not None
    listed = admin.call(ADMIN_KEY, "GET", P + "/keys?project=a")
    one = admin.call(ADMIN_KEY, "GET", f"{P}/keys/{created['id']}")
    for response in (listed, one):
        assert created["secret"] not in response.text
        assert "digest" not in response.text
    assert "secret" not in one.json() and one.json()["name"] == "ci"
    revoked = admin.ok(ADMIN_KEY, "DELETE", f"{P}/keys/{created['id']}")
    assert revoked["status"] == "revoked" and revoked["revoked_at"] is not None


def test_limits_patch_keeps_absent_fields_and_null_clears(admin: Admin):
    admin.project("a", rpm=10, tpm=1000, daily_budget_usd=5)
    patched = admin.ok(
        ADMIN_KEY, "PATCH", P + "/projects/a", json={"rpm": None, "monthly_budget_usd": 12.345678}
    )
    assert patched["rpm"] is None and patched["tpm"] == 1000
    assert patched["daily_budget_micros"] == 5_000_000
    assert patched["monthly_budget_micros"] == 12_345_678
    assert patched["monthly_budget_usd"] == "12.345678"
    key = admin.key("a", daily_budget_usd="0.000001")
    assert key["daily_budget_micros"] == 1
    changed = admin.ok(ADMIN_KEY, "PATCH", f"{P}/keys/{key['id']}", json={"tpm": 77})
    assert (changed["tpm"], changed["daily_budget_micros"]) == (77, 1)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"rpm": 0}, "rpm"),
        ({"rpm": 10**9 + 1}, "rpm"),
        ({"rpm": "5"}, "rpm"),
        ({"tpm": True}, "tpm"),
        ({"tpm": 1.5}, "tpm"),
        ({"daily_budget_usd": "-1"}, "daily_budget_usd"),
        ({"daily_budget_usd": "1e3"}, "daily_budget_usd"),
        ({"daily_budget_usd": "0.0000001"}, "daily_budget_usd"),
        ({"daily_budget_usd": 0.0000001}, "daily_budget_usd"),
        ({"monthly_budget_usd": 10**9 + 1}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "NaN"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": [1]}, "monthly_budget_usd"),
        ({"daily": 1}, "daily"),
    ],
)
def test_limit_input_is_checked_field_by_field(admin: Admin, body: dict[str, Any], param: str):
    admin.project("a")
    response = admin.call(ADMIN_KEY, "PATCH", P + "/projects/a", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and param in error["message"]
    assert error["type"] == "invalid_request_error"


def test_bodies_paths_and_queries_are_validated(admin: Admin):
    admin.project("a")
    cases: list[tuple[str, str, Any, str | None]] = [
        ("POST", "/projects", {"id": "b", "owner": "x"}, "owner"),
        ("POST", "/projects", {"description": "no id"}, "id"),
        ("POST", "/projects", {"id": "Bad Id"}, "id"),
        ("POST", "/projects", {"id": "b", "description": 3}, "description"),
        ("POST", "/projects", ["not", "an", "object"], "body"),
        ("POST", "/keys", {"project": "a", "role": "admin"}, "role"),
        ("POST", "/keys", {"role": "member"}, "project"),
        ("POST", "/keys", {"role": "operator", "project": "a"}, "project"),
        ("POST", "/keys", {"project": "a", "deployments": ["nope"]}, "deployments"),
        ("POST", "/keys", {"project": "a", "deployments": ["a,b"]}, "deployments[0]"),
        ("POST", "/keys", {"project": "a", "deployments": []}, "deployments"),
        ("POST", "/keys", {"project": "a", "expires_in": "forever"}, "expires_in"),
        ("POST", "/keys", {"project": "a", "expires_in": "0d"}, "expires_in"),
        ("POST", "/keys", {"project": "a", "expires_in": "9999999w"}, "expires_in"),
        ("POST", "/keys", {"project": "a", "name": "x" * 129}, "name"),
        ("GET", "/keys/NOT-A-KEY", None, "key_id"),
        ("GET", "/projects/a%0A", None, "project_id"),
        ("GET", "/projects?limit=3", None, "limit"),
        ("GET", "/usage?by=week", None, "by"),
        ("GET", "/usage?since=yesterday", None, "since"),
        ("GET", "/usage?since=9999-12-31T23:59:59-14:00", None, "since"),
        ("GET", "/usage?limit=0", None, "limit"),
        ("GET", "/usage?project=a&project=b", None, "project"),
        ("GET", "/usage.csv?by=model", None, "by"),
    ]
    wrong = []
    for method, path, body, param in cases:
        response = admin.call(ADMIN_KEY, method, P + path, json=body)
        error = response.json()["error"]
        if response.status_code != 400 or error["param"] != param:
            wrong.append(f"{method} {path}: {response.status_code} {error}")
    assert not wrong


def test_bad_bodies_and_unknown_ids(admin: Admin):
    empty = admin.call(ADMIN_KEY, "POST", P + "/projects", content=b"")
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "body"
    broken = admin.call(ADMIN_KEY, "POST", P + "/projects", content=b"{nope")
    assert broken.status_code == 400
    huge = admin.call(ADMIN_KEY, "POST", P + "/projects", content=b" " * (65 * 1024))
    assert huge.status_code == 413
    missing = admin.call(ADMIN_KEY, "POST", P + "/keys/abcdefabcdef/revoke")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "key_not_found"
    no_project = admin.call(ADMIN_KEY, "POST", P + "/keys", json={"project": "ghost"})
    assert no_project.status_code == 404


def test_without_a_store_tenancy_routes_answer_503(env: pytest.MonkeyPatch, upstream: FakeOpenAI):
    with TestClient(create_app(admin_settings(upstream.base_url))) as client:
        admin = Admin(client)
        response = admin.call(ADMIN_KEY, "GET", P + "/projects")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "no_store"
        assert admin.call(ADMIN_KEY, "POST", P + "/keys", json={"project": "a"}).status_code == 503
        assert admin.ok(ADMIN_KEY, "GET", P + "/me")["role"] == "operator"
        assert len(admin.ok(ADMIN_KEY, "GET", P + "/deployments")["data"]) == 2


def test_an_open_server_does_not_open_the_admin_api(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeOpenAI
):
    """No key anywhere: models are open (loopback mode), administration is not."""
    monkeypatch.delenv("MODELYARD_ADMIN_KEY", raising=False)
    url = f"sqlite+aiosqlite:///{tmp_path / 'open.db'}"
    with TestClient(create_app(admin_settings(upstream.base_url), store_url=url)) as client:
        assert client.get("/v1/models").status_code == 200
        refused = client.post(P + "/projects", json={"id": "a"})
        assert refused.status_code == 401
        assert "modelyard admin init" in refused.json()["error"]["message"]


def test_errors_carry_the_request_id(admin: Admin):
    response = admin.client.get(P + "/projects", headers={"x-request-id": "req-abc.1"})
    assert response.status_code == 401
    # The request id is ours (issue 17 #11); the client's comes back as its correlation id.
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["x-client-request-id"] == "req-abc.1"
    assert orjson.loads(response.content)["error"]["type"] == "authentication_error"
