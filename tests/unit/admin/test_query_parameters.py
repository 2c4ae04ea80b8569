"""Issue 17 #8: every query parameter of the admin API is validated; a bad one is a 400 naming
it, never a 500. ``GET /admin/v1/usage?limit=%C2%B2`` (a superscript two) answered 500."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.server.admin_routes import openapi_document
from tests.properties import examples

from .conftest import ADMIN_KEY, Admin

P = "/admin/v1"
_DOC = openapi_document()
# Every (path, query parameter) the document lists for a GET without path parameters.
QUERIES = sorted(
    (path, param["name"])
    for path, item in _DOC["paths"].items()
    if "get" in item and "{" not in path
    for param in item["get"].get("parameters", [])
    if param["in"] == "query"
)
# A route's required query parameters: sending only another one may be refused naming them.
REQUIRED = {
    path: {p["name"] for p in item["get"].get("parameters", []) if p.get("required")}
    for path, item in _DOC["paths"].items()
    if "get" in item
}
COUNTS = [(path, name) for path, name in QUERIES if name in ("limit", "offset")]
NOT_COUNTS = ["%C2%B2", "%D9%A1", "%EF%BC%91", "+5", "%205", "5.0", "1_000", "-1", "0x10", "",
              "%FF", "%00", "9" * 5000, "1e3"]  # fmt: skip


def test_the_issues_request_is_a_400_naming_limit(admin: Admin):
    for path in ("/usage", "/usage.csv"):
        response = admin.call(ADMIN_KEY, "GET", f"{P}{path}?limit=%C2%B2")
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["param"], error["code"]) == ("limit", "invalid_value")
        assert "'²' is not a whole number" in error["message"]


@pytest.mark.parametrize(("path", "name"), COUNTS)
def test_a_count_is_plain_ascii_digits(admin: Admin, path: str, name: str):
    for value in NOT_COUNTS:
        response = admin.call(ADMIN_KEY, "GET", f"{path}?{name}={value}")
        assert response.status_code == 400, (value, response.text)
        assert response.json()["error"]["param"] == name
    assert admin.call(ADMIN_KEY, "GET", f"{path}?{name}=1").status_code == 200


def test_every_count_parameter_is_covered():
    assert len(COUNTS) >= 4, COUNTS  # usage, usage.csv, the evaluation pages


def test_any_value_of_any_query_parameter_is_served_or_refused_by_name(admin: Admin):
    admin.project("a")

    @settings(max_examples=examples(300), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(where=st.sampled_from(QUERIES), value=st.text(max_size=300))
    def run(where: tuple[str, str], value: str) -> None:
        path, name = where
        response = admin.call(ADMIN_KEY, "GET", f"{path}?{name}={quote(value, safe='')}")
        assert response.status_code in (200, 400), (path, name, value, response.text)
        if response.status_code == 400:
            error = response.json()["error"]
            assert error["param"] in {name} | REQUIRED[path], (path, name, value, error)

    run()
