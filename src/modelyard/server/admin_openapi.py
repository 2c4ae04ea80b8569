"""The admin API's OpenAPI 3.1 document, generated from its operations and their models.

Each ``Operation`` names its path, method, input models (path, query, body) and response
model; ``document`` turns the models into JSON schemas with pydantic and lays out the paths.
Nothing about a field is written here: a field added to a model appears in the document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.responses import Response

from modelyard import __version__
from modelyard.services import admin_models as models
from modelyard.services.admin_fields import PROJECT_ID

Schema = dict[str, Any]
REF = "#/components/schemas/{model}"
ERRORS: Final[Mapping[int, str]] = {
    400: "The input is wrong; `error.param` names the field.",
    401: "No key, an unknown, revoked or expired key.",
    403: "The key's role may not do this.",
    404: "No such project or key.",
    409: "The project already exists.",
    413: "The body is larger than 64 KiB.",
    503: "The server has no store, or the store is unavailable.",
}
CSV_CONTENT: Final[Mapping[str, Schema]] = {"text/csv": {"schema": {"type": "string"}}}


@dataclass(frozen=True, slots=True)
class Operation:
    """One route of the admin API: what it takes, what it answers, and who handles it."""

    method: str
    path: str  # under /admin/v1, with {placeholders}
    summary: str
    handler: Callable[[Any], Awaitable[BaseModel | Response]]  # takes the route's Call
    answer: tuple[int, type[BaseModel] | None, str]  # status, body model (None: CSV), what
    errors: tuple[int, ...]
    query: type[models.Query] = models.NoQuery
    path_params: type[models.Query] | None = None
    body: type[models.Request] | None = None
    csv_too: bool = False  # the answer may also be CSV (``format=csv``)
    media_type: str = "text/csv"  # the answer's type when it has no model
    # The audit log's kind for this change (every operation but a GET is audited; unset: the
    # path's first segment and the method, ``agents.post``) and the handler that reads the
    # object as it was before (its answer is the audit entry's "before"; None: nothing before).
    audit: str | None = None
    before: Callable[[Any], Awaitable[BaseModel]] | None = None

    @property
    def audit_kind(self) -> str | None:
        """What the audit log calls this change; None: a read, not audited."""
        if self.method == "GET":
            return None
        return self.audit or f"{self.path.strip('/').split('/')[0]}.{self.method.lower()}"


Refs = Mapping[tuple[type[Any], JsonSchemaMode], Schema]


def _component_schemas(operations: Sequence[Operation]) -> tuple[Refs, Schema]:
    """Every body (as read) and answer (as written) model, and the ``$ref`` of each: pydantic
    names a model used both ways with differing schemas ``Name-Input`` and ``Name-Output``."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(models.Error, "serialization")]
    for op in operations:
        if op.body is not None:
            wanted.append((op.body, "validation"))
        if op.answer[1] is not None:
            wanted.append((op.answer[1], "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    return refs, dict(sorted(defs.get("$defs", {}).items()))


def _parameters(model: type[models.Query] | None, where: str) -> list[Schema]:
    if model is None:
        return []
    schema = model.model_json_schema(mode="validation", ref_template=REF)
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": _not_null(field),
            "description": _description(field),
        }
        for name, field in schema.get("properties", {}).items()
    ]


def _description(field: Schema) -> str:
    inner = [s.get("description") for s in field.get("anyOf", ())]
    return str(field.get("description") or next(filter(None, inner), ""))


def _not_null(field: Schema) -> Schema:
    """A parameter is a string on the wire or absent; it is never JSON null."""
    kept = {k: v for k, v in field.items() if k not in ("title", "description", "anyOf")}
    options = [s for s in field.get("anyOf", ()) if s != {"type": "null"}]
    if len(options) == 1:
        kept.update({k: v for k, v in options[0].items() if k != "description"})
    elif options:
        kept["anyOf"] = options
    if "default" in kept and kept["default"] is None:
        del kept["default"]
    return kept


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(op: Operation, refs: Refs) -> Schema:
    status, model, description = op.answer
    if model is None:
        text = {op.media_type: {"schema": {"type": "string"}}}
        answer: Schema = {"description": description, "content": text}
    else:
        answer = _json(refs[model, "serialization"], description)
        if op.csv_too:
            answer["content"].update(CSV_CONTENT)
    spec: Schema = {
        "summary": op.summary,
        "responses": {
            str(status): answer,
            # 400 and 403 too: any operation may refuse its x-modelyard-project header.
            **{
                str(code): {"$ref": f"#/components/responses/E{code}"}
                for code in sorted({*op.errors, 400, 403})
            },
        },
    }
    parameters = _parameters(op.path_params, "path") + _parameters(op.query, "query")
    spec["parameters"] = [*parameters, _project_header()]
    if op.body is not None:
        body = {"application/json": {"schema": refs[op.body, "validation"]}}
        spec["requestBody"] = {"required": True, "content": body}
    return spec


def _project_header() -> Schema:
    """The header every operation takes (``services/acting.py``)."""
    return {
        "name": "x-modelyard-project",
        "in": "header",
        "required": False,
        "description": "The project to act in, for a caller with several (single sign-on): "
        "403 if not a member, 400 if there is no such project",
        "schema": {"type": "string", "pattern": PROJECT_ID.pattern},
    }


def _paths(prefix: str, operations: Sequence[Operation], refs: Refs) -> Schema:
    paths: Schema = {
        f"{prefix}/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            }
        }
    }
    for op in operations:
        paths.setdefault(prefix + op.path, {})[op.method.lower()] = _operation(op, refs)
    return paths


def document(prefix: str, operations: Sequence[Operation]) -> Schema:
    """The whole document; roles: operator (everything), owner (its project), member (itself)."""
    refs, schemas = _component_schemas(operations)
    error = _json(refs[models.Error, "serialization"], "")
    responses = {f"E{code}": {**error, "description": text} for code, text in ERRORS.items()}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Modelyard admin API",
            "version": __version__,
            "description": "Projects, API keys, limits, budgets, deployments and usage. Roles: "
            "operator (everything), project owner (its project's keys, limits and usage), "
            "member (calls models, sees its own usage). Money: integer micro-dollars, and "
            "dollars as decimal strings.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _paths(prefix, operations, refs),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API key"}
            },
            "schemas": schemas,
            "responses": responses,
        },
    }
