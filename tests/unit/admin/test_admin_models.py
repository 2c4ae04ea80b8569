"""The admin API's models are its one source: pydantic's errors become 400s that name the field
path, and the OpenAPI document is generated from the models (a field added to a model shows up
in it without another edit)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from modelyard.core.errors import InvalidRequest
from modelyard.server.admin_openapi import Operation, document
from modelyard.server.admin_routes import OPERATIONS, PREFIX, ROUTES, openapi_document
from modelyard.services import admin_models as models
from modelyard.services.admin_fields import field_path, parse

from .conftest import ADMIN_KEY, Admin

P = "/admin/v1"


class Wrapper(BaseModel):
    """A body that nests the limits, as a future admin body may."""

    model_config = ConfigDict(extra="forbid", strict=True)
    limits: models.LimitsPatch
    tags: list[models.KeyCreate] = []


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("limits", "rpm"), "limits.rpm"),
        (("deployments", 0), "deployments[0]"),
        (("tags", 2, "deployments", 0), "tags[2].deployments[0]"),
        ((), ""),
    ],
)
def test_a_pydantic_location_reads_as_a_field_path(loc: tuple[int | str, ...], path: str):
    assert field_path(loc) == path


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({"limits": {"rpm": 0}}, "limits.rpm", "between 1 and 1000000000"),
        ({"limits": {"tpm": "5"}}, "limits.tpm", "must be an integer or null, got a string"),
        ({"limits": {}, "tags": [{"project": "Bad Id"}]}, "tags[0].project", "not a project id"),
        ({}, "limits", "is required"),
        ({"limits": []}, "limits", "must be a JSON object, got an array"),
        ("limits", "body", "must be a JSON object, got a string"),
    ],
)
def test_a_nested_mistake_names_its_path_and_what_is_accepted(body: Any, param: str, says: str):
    with pytest.raises(InvalidRequest) as caught:
        parse(Wrapper, body, "body")
    error = caught.value
    assert (error.status, error.param, error.code) == (400, param, "invalid_value")
    assert error.message.startswith(f"{param}: ") and says in error.message


def test_an_unknown_nested_field_is_refused_with_the_fields_accepted():
    with pytest.raises(InvalidRequest) as caught:
        parse(Wrapper, {"limits": {"rpn": 5}}, "body")
    assert (caught.value.param, caught.value.code) == ("limits.rpn", "unknown_field")
    assert "'limits.rpn'" in caught.value.message


def test_a_validation_error_is_a_400_in_the_api_error_shape(admin: Admin):
    admin.project("a")
    body = {"project": "a", "deployments": ["chat", "a,b"], "rpm": 5}
    response = admin.call(ADMIN_KEY, "POST", P + "/keys", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "deployments[1]: 'a,b' is not a deployment name "
            "(1-128 characters, no commas)",
            "type": "invalid_request_error",
            "param": "deployments[1]",
            "code": "invalid_value",
        }
    }
    strict = admin.call(ADMIN_KEY, "PATCH", P + "/projects/a", json={"tpm": "100"})
    assert strict.status_code == 400 and strict.json()["error"]["param"] == "tpm"
    unknown = admin.call(ADMIN_KEY, "GET", P + "/usage?grup=model")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "unknown_parameter"
    assert "by" in unknown.json()["error"]["message"]  # the parameters it would accept


def test_the_served_document_is_the_generated_one(admin: Admin):
    served = admin.ok(None, "GET", P + "/openapi.json")
    assert served == openapi_document()
    paths = served["paths"]
    documented = {(path, method.upper()) for path, item in paths.items() for method in item}
    for op in OPERATIONS:
        assert (PREFIX + op.path, op.method) in documented
    served_routes = {(r.path, m) for r in ROUTES for m in r.methods or () if m != "HEAD"}
    assert {(PREFIX + op.path, op.method) for op in OPERATIONS} <= served_routes


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_every_reference_in_the_document_resolves():
    doc = openapi_document()
    for ref in _refs(doc):
        section, _, name = ref.removeprefix("#/components/").partition("/")
        assert name in doc["components"][section], ref
    # Each response model of an operation is a component, with every field required.
    for op in OPERATIONS:
        model = op.answer[1]
        if model is not None:
            schema = doc["components"]["schemas"][model.__name__]
            assert set(schema["required"]) == set(model.model_fields)


class ProjectCreateWithOwner(models.ProjectCreate):
    owner_email: str | None = None


class ProjectWithOwner(models.Project):
    owner_email: str | None


def test_a_field_added_to_a_model_appears_in_the_document():
    """One edit: the model. The document, its request and its response follow."""

    async def handler(call: Any) -> models.Project:
        raise AssertionError("not called")

    op = Operation(
        "POST",
        "/projects",
        "Create a project",
        handler,
        answer=(201, ProjectWithOwner, "The new project"),
        errors=(400,),
        body=ProjectCreateWithOwner,
    )
    doc = document(PREFIX, [op])
    schemas = doc["components"]["schemas"]
    request = schemas["ProjectCreateWithOwner"]
    assert "owner_email" in request["properties"] and request["additionalProperties"] is False
    assert "owner_email" in schemas["ProjectWithOwner"]["required"]
    post = doc["paths"][f"{PREFIX}/projects"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProjectCreateWithOwner"
    }
    # And the current document does not have the field: it came from the model alone.
    assert (
        "owner_email"
        not in openapi_document()["components"]["schemas"]["ProjectCreate"]["properties"]
    )


def test_query_parameters_come_from_the_query_models():
    doc = openapi_document()
    usage = doc["paths"][f"{PREFIX}/usage"]["get"]
    names = [p["name"] for p in usage["parameters"] if p["in"] == "query"]
    assert names == list(models.UsageQuery.model_fields)
    assert usage["parameters"][-1]["name"] == "x-modelyard-project"  # every operation's header
    by = next(p for p in usage["parameters"] if p["name"] == "by")
    assert by["schema"]["enum"] == ["project", "key", "deployment", "model", "day", "status"]
    assert all(p["in"] == "query" and not p["required"] for p in usage["parameters"][:-1])
    key = doc["paths"][f"{PREFIX}/keys/{{key_id}}"]["get"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in key] == [
        ("key_id", "path", True),
        ("x-modelyard-project", "header", False),
    ]


class Echo(models.Request):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)
    note: str = ""


def test_a_model_read_and_written_gets_a_schema_for_each_way():
    """A default makes a field optional as read but present as written: two schemas, two refs."""

    async def handler(call: Any) -> Echo:
        raise AssertionError("not called")

    op = Operation(
        "POST", "/echo", "Echo", handler, answer=(200, Echo, ""), errors=(), body=Echo
    )  # fmt: skip
    doc = document(PREFIX, [op])
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        _, _, kind, name = ref.split("/")  # #/components/<schemas|responses>/<name>
        assert name in doc["components"][kind], ref
    post = doc["paths"][f"{PREFIX}/echo"]["post"]
    read = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    written = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert read != written
    assert "required" not in schemas[read.rsplit("/", 1)[1]]
    assert schemas[written.rsplit("/", 1)[1]]["required"] == ["note"]
