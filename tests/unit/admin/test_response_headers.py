"""Every JSON answer is a ``JSONBody``, which builds its headers without Starlette's general
``init_headers``: the bytes must be the ones Starlette would send, and every name this server
sends must already be lowercase (ASGI's rule, which ``JSONBody`` no longer enforces)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import Response

from modelyard.server.http import JSONBody
from tests.unit.admin.conftest import ADMIN_KEY, Admin, wait_for

_name = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=30).filter(
    lambda n: n not in ("content-length", "content-type")
)
_value = st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=40)


@given(
    body=st.binary(max_size=64),
    status=st.sampled_from([200, 201, 204, 304, 400, 402, 429, 500]),
    headers=st.none() | st.dictionaries(_name, _value, max_size=8),
)
def test_the_headers_are_the_bytes_starlette_would_send(
    body: bytes, status: int, headers: dict[str, str] | None
) -> None:
    ours = JSONBody(body, status, headers)
    theirs = Response(body, status_code=status, headers=headers, media_type="application/json")
    assert (ours.status_code, ours.body, ours.raw_headers) == (
        theirs.status_code,
        theirs.body,
        theirs.raw_headers,
    )


def test_a_value_outside_latin_1_is_refused_as_starlette_refuses_it() -> None:
    with pytest.raises(UnicodeEncodeError):
        Response(b"{}", headers={"x-model": "模型"}, media_type="application/json")
    with pytest.raises(UnicodeEncodeError):
        JSONBody(b"{}", 200, {"x-model": "模型"})


def test_every_header_name_the_api_sends_is_lowercase(admin: Admin) -> None:
    admin.project("p", rpm=1, tpm=100_000, daily_budget_usd=5)
    key = admin.key("p")["secret"]
    wait_for(lambda: admin.call(key, "GET", "/admin/v1/me").status_code == 200)  # installed
    answers = {
        "chat": admin.chat(key),  # x-ratelimit-*, the cost, the served target
        "refused": admin.chat(key),  # over the RPM: retry-after and x-ratelimit-*
        "bad key": admin.chat("my-000000000000-nope"),
        "no route": admin.call(ADMIN_KEY, "GET", "/v1/nothing"),
        "wrong method": admin.call(ADMIN_KEY, "GET", "/v1/chat/completions"),  # allow: POST
        "admin": admin.call(ADMIN_KEY, "GET", "/admin/v1/projects"),
        "models": admin.call(key, "GET", "/v1/models"),
    }
    assert [r.status_code for r in answers.values()] == [200, 429, 401, 404, 405, 200, 200]
    assert "x-ratelimit-remaining-tokens" in answers["chat"].headers
    assert "retry-after" in answers["refused"].headers
    for what, response in answers.items():
        names = [name for name, _ in response.headers.raw]
        assert names == [n.lower() for n in names], what
