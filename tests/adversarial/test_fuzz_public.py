"""A fuzzer of the public routes (issue 17): ``/v1/chat/completions``, ``/v1/messages``,
``/v1/messages/count_tokens``, ``/v1/embeddings`` and ``/v1/models``, through the real app with a
store, a key with limits and a fake OpenAI-compatible upstream that speaks the real wire format.

Hypothesis starts from a request the route accepts and breaks it: a field set to any JSON value
(at the top or inside a message, a tool, a content block), a field removed, an unknown field
added, the whole body replaced by other JSON or by raw bytes, a header changed. Whatever it
sends, the gateway answers below 500; an error comes in the route's own dialect (OpenAI's
``{"error": {message, type, param, code}}``, Anthropic's ``{"type": "error", "error": {type,
message}}``); a 400 about a broken field names that field; a stream ends in its dialect's way.
After each run the process is still healthy: ``/healthz``, ``/readyz`` and a plain request
answer as before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from modelyard.config.schema import Settings
from modelyard.server.app import create_app
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("PUBLIC_FUZZ_EXAMPLES", "150"))
UPSTREAM_KEY = "sk-upstream-fuzz"
CLIENT_KEY = "fuzz-client-key-0123456789"
USER = [{"role": "user", "content": "hello"}]
TOOL = {
    "type": "function",
    "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
}
ANTHROPIC_TOOL = {"name": "f", "input_schema": {"type": "object", "properties": {}}}


@dataclass(frozen=True)
class Route:
    path: str
    dialect: str  # "openai" or "anthropic"
    base: dict[str, Any]
    # Paths (tuples of keys and indexes) into the body that a mutation may target.
    spots: tuple[tuple[str | int, ...], ...]


ROUTES = {
    "chat": Route(
        "/v1/chat/completions",
        "openai",
        {"model": "chat", "messages": USER, "max_tokens": 8, "tools": [TOOL]},
        (
            ("model",), ("messages",), ("messages", 0), ("messages", 0, "role"),
            ("messages", 0, "content"), ("max_tokens",), ("temperature",), ("stream",),
            ("stream_options",), ("tools",), ("tools", 0), ("tools", 0, "function"),
            ("tools", 0, "function", "parameters"), ("tool_choice",), ("response_format",),
            ("n",), ("stop",), ("top_p",), ("seed",), ("logprobs",), ("user",),
        ),
    ),
    "messages": Route(
        "/v1/messages",
        "anthropic",
        {"model": "chat", "messages": USER, "max_tokens": 8, "tools": [ANTHROPIC_TOOL]},
        (
            ("model",), ("messages",), ("messages", 0), ("messages", 0, "role"),
            ("messages", 0, "content"), ("max_tokens",), ("system",), ("temperature",),
            ("stream",), ("tools",), ("tools", 0), ("tools", 0, "input_schema"),
            ("tool_choice",), ("stop_sequences",), ("metadata",), ("thinking",), ("top_k",),
        ),
    ),
    "count_tokens": Route(
        "/v1/messages/count_tokens",
        "anthropic",
        {"model": "chat", "messages": USER},
        (("model",), ("messages",), ("messages", 0, "content"), ("system",), ("tools",)),
    ),
    "embeddings": Route(
        "/v1/embeddings",
        "openai",
        {"model": "embed", "input": ["hello", "there"]},
        (("model",), ("input",), ("input", 0), ("encoding_format",), ("dimensions",), ("user",)),
    ),
}  # fmt: skip

# Any JSON value, small: scalars of every kind (odd numbers and strings included), lists, objects.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def settings_for(upstream: FakeOpenAI) -> Settings:
    target = {"provider": "fake", "model": "gpt-4o-mini"}
    return Settings.model_validate(
        {
            "local": {"enabled": False},
            "server": {"api_keys": [CLIENT_KEY]},
            "providers": {
                "fake": {
                    "type": "openai_compatible",
                    "base_url": upstream.base_url,
                    "api_key": UPSTREAM_KEY,
                }
            },
            "deployments": {
                "chat": {"targets": [target]},
                "embed": {"targets": [{"provider": "fake", "model": "text-embedding-3-small"}]},
            },
        }
    )


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as env:
        for name in ("MODELYARD_ADMIN_KEY", "MODELYARD_REDIS_URL", "MODELYARD_DATABASE_URL"):
            env.delenv(name, raising=False)
        store: Path = tmp_path_factory.mktemp("fuzz") / "store.db"
        with FakeOpenAI(api_key=UPSTREAM_KEY) as upstream:
            app = create_app(settings_for(upstream), store_url=f"sqlite+aiosqlite:///{store}")
            with TestClient(app) as test_client:
                yield test_client


# --- mutations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    body: bytes
    spot: tuple[str | int, ...] | None  # the field broken, when one was
    headers: dict[str, str]


def _set(body: Any, spot: tuple[str | int, ...], value: Any, delete: bool = False) -> bool:
    """Set (or delete) ``spot`` in ``body``; False when the path does not exist in it."""
    node = body
    for part in spot[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    last = spot[-1]
    if isinstance(node, dict) and isinstance(last, str):
        if delete:
            node.pop(last, None)
        else:
            node[last] = value
        return True
    if isinstance(node, list) and isinstance(last, int) and last < len(node):
        if delete:
            node.pop(last)
        else:
            node[last] = value
        return True
    return False


@st.composite
def requests(draw: st.DrawFn, route: Route) -> Sent:
    body: Any = orjson.loads(orjson.dumps(route.base))  # a deep copy
    if ("stream",) in route.spots:
        body["stream"] = draw(st.booleans())
    kind = draw(st.sampled_from(["set", "set", "set", "delete", "extra", "other json", "bytes"]))
    headers = {"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"}
    spot: tuple[str | int, ...] | None = None
    if kind in ("set", "delete"):
        spot = draw(st.sampled_from(route.spots))
        if not _set(body, spot, draw(JSON), delete=kind == "delete"):
            spot = None
    elif kind == "extra":
        body[draw(st.text(min_size=1, max_size=20))] = draw(JSON)
    elif kind == "other json":
        body = draw(JSON)
    # The standard library's JSON writes integers of any size (orjson stops at 64 bits).
    raw = draw(st.binary(max_size=200)) if kind == "bytes" else json.dumps(body).encode()
    if draw(st.integers(0, 9)) == 0:  # now and then a header is wrong too
        spot = None  # the header may be what is refused
        headers[draw(st.sampled_from(["content-type", "authorization", "x-request-id"]))] = draw(
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
        )
    return Sent(raw, spot, headers)


# --- what every answer must be --------------------------------------------------------------


def check_error(dialect: str, status: int, payload: Any, sent: Sent) -> None:
    if dialect == "openai":
        error = payload["error"]
        assert isinstance(error["message"], str) and error["message"], payload
        assert isinstance(error["type"], str) and {"param", "code"} <= set(error), payload
        named = error["param"]
    else:
        assert payload["type"] == "error", payload
        error = payload["error"]
        assert isinstance(error["type"], str) and isinstance(error["message"], str), payload
        assert error["message"], payload
        named = error["message"].partition(":")[0]
    if status == 400 and sent.spot is not None:
        # A broken field is refused by its name (the message may go deeper: tools[0].name).
        assert str(named or "").startswith(str(sent.spot[0])), (sent.spot, payload)


def check_stream(dialect: str, text: str) -> None:
    if dialect == "openai":
        assert text.rstrip().endswith("data: [DONE]") or '\ndata: {"error"' in "\n" + text, text
    else:
        assert "event: message_stop" in text or "event: error" in text, text


def check(client: TestClient, route: Route, sent: Sent) -> int:
    response = client.post(route.path, content=sent.body, headers=sent.headers)
    status = response.status_code
    assert status < 500, (route.path, sent, status, response.text[:500])
    if status >= 400:
        check_error(route.dialect, status, response.json(), sent)
    elif response.headers.get("content-type", "").startswith("text/event-stream"):
        check_stream(route.dialect, response.text)
    else:
        assert isinstance(response.json(), dict)
    return status


def still_healthy(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    auth = {"authorization": f"Bearer {CLIENT_KEY}"}
    plain = client.post(
        "/v1/chat/completions", json={"model": "chat", "messages": USER}, headers=auth
    )
    assert plain.status_code == 200, plain.text
    assert client.get("/v1/models", headers=auth).status_code == 200


_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_no_input_breaks_a_public_route(client: TestClient, name: str):
    route = ROUTES[name]
    seen: set[int] = set()

    @_SETTINGS
    @given(sent=requests(route))
    def run(sent: Sent) -> None:
        seen.add(check(client, route, sent))

    run()
    assert {200, 400} <= seen, seen  # requests were served and refused: the fuzz reached both
    still_healthy(client)


def test_any_model_id_and_any_key_on_the_models_routes(client: TestClient):
    @_SETTINGS
    @given(model=st.text(max_size=200), key=st.text(max_size=80) | st.just(CLIENT_KEY))
    def run(model: str, key: str) -> None:
        headers = {"authorization": f"Bearer {key}"} if key.isprintable() and key.isascii() else {}
        for response in (
            client.get("/v1/models", headers=headers),
            client.get(f"/v1/models/{_quoted(model)}", headers=headers),
        ):
            assert response.status_code < 500, response.text
            if response.status_code >= 400:
                assert response.json()["error"]["message"], response.text

    run()
    still_healthy(client)


def _quoted(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def test_the_fuzzer_reaches_the_handlers(client: TestClient):
    """Not vacuous: the base requests are served, and a broken field is refused by name."""
    auth = {"authorization": f"Bearer {CLIENT_KEY}"}
    for route in ROUTES.values():
        served = client.post(route.path, json=route.base, headers=auth)
        assert served.status_code == 200, (route.path, served.text)
    broken = {**ROUTES["chat"].base, "max_tokens": "many"}
    refused = client.post("/v1/chat/completions", json=broken, headers=auth)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "max_tokens"
    broken = {**ROUTES["messages"].base, "max_tokens": "many"}
    refused = client.post("/v1/messages", json=broken, headers=auth)
    assert refused.status_code == 400 and "max_tokens" in refused.json()["error"]["message"]


def test_deeply_nested_bodies_are_refused_or_served(client: TestClient):
    auth = {"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"}
    for depth in (255, 256, 1024, 5000):
        for route in ROUTES.values():
            head = json.dumps(route.base)[:-1]
            body = f'{head}, "metadata": {"[" * depth}{"]" * depth}}}'.encode()
            response = client.post(route.path, content=body, headers=auth)
            assert response.status_code < 500, (depth, route.path, response.text[:300])
    still_healthy(client)
