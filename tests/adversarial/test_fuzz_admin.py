"""Schemathesis drives every admin operation from the served OpenAPI document, with data that
fits the schema and data that does not, as the operator. No input may give a 5xx; every status
must be one the document lists for that operation, with the content type and body schema it
states; input the schema forbids must be refused with a 4xx."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from modelyard.server.admin_routes import openapi_document
from modelyard.server.app import create_app
from tests.fakes.openai_upstream import FakeOpenAI
from tests.unit.admin.conftest import ADMIN_KEY, UPSTREAM_KEY, admin_settings

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("ADMIN_FUZZ_EXAMPLES", "50"))
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
_PATHS = openapi_document()["paths"]
OPERATIONS = sorted((path, method.upper()) for path, item in _PATHS.items() for method in item)
# Only operations that take input have input to break.
CASES = [
    (path, method, mode)
    for path, method in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE
    or {"parameters", "requestBody"} & set(_PATHS[path][method.lower()])
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def schema(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeOpenAI
) -> Iterator[schemathesis.BaseSchema]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MODELYARD_ADMIN_KEY", ADMIN_KEY)
        env.delenv("MODELYARD_REDIS_URL", raising=False)
        env.delenv("MODELYARD_DATABASE_URL", raising=False)
        store = tmp_path_factory.mktemp("fuzz") / "store.db"
        app = create_app(
            admin_settings(upstream.base_url), store_url=f"sqlite+aiosqlite:///{store}"
        )
        # The operator's key through the schema's own bearer scheme, so the fuzzer knows that
        # requests carry it (and does not count a header it left out as negative data).
        # A body over the 64 KiB limit (a negative case can be a list of thousands of names)
        # is refused whole with 413, which the document lists: schemathesis's default list of
        # rejections plus 413 (a 5xx stays a failure through not_a_server_error).
        rejected = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "429"]
        config = schemathesis.Config.from_dict(
            {
                "auth": {"openapi": {"bearer": {"bearer": ADMIN_KEY}}},
                "checks": {"negative_data_rejection": {"expected-statuses": rejected}},
            }
        )
        loaded = schemathesis.openapi.from_asgi("/admin/v1/openapi.json", app, config=config)
        try:
            yield loaded
        finally:
            asgi.shutdown_lifespans()  # stops the app's store and key refresher


def _seed(schema: schemathesis.BaseSchema) -> None:
    """A project, so generated ids sometimes meet one that exists."""
    operation = schema["/admin/v1/projects"]["POST"]
    case = operation.Case(body={"id": "a", "rpm": 5})
    case.call(headers=AUTH)


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_no_input_breaks_an_admin_route(
    schema: schemathesis.BaseSchema, path: str, method: str, mode: GenerationMode
):
    _seed(schema)
    operation = schema[path][method]
    checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
    strategy = operation.as_strategy(generation_mode=mode)
    statuses: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(strategy)
        response = case.call()
        statuses.append(response.status_code)
        case.validate_response(response, checks=checks)

    run()
    # The requests carried the key and reached the handlers (negative data may mangle the
    # header: those get 401); data that fits the schema was served where no id can be unknown.
    assert any(status != 401 for status in statuses), statuses
    if mode is GenerationMode.POSITIVE:
        assert 401 not in statuses, statuses
        if "{" not in path and method == "GET":
            assert 200 in statuses, statuses


def test_the_fuzzer_reaches_the_app(schema: schemathesis.BaseSchema):
    """The harness is live: a request it sends lands and is checked against the document."""
    operation = schema["/admin/v1/me"]["GET"]
    response = operation.Case().call(headers=AUTH)
    assert response.status_code == 200
    assert response.json()["role"] == "operator"
    unauthorised = operation.Case().call()
    assert unauthorised.status_code == 401
