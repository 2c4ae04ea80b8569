"""The hand-written OpenAPI 3.1 document of the admin API, served at ``/admin/v1/openapi.json``.

It states exactly what the readers in ``admin_input`` accept (request bodies refuse unknown
fields) and what ``admin_views`` returns; the fuzz tests hold the server to it.
"""

from __future__ import annotations

from typing import Any

from modelyard import __version__
from modelyard.server.admin_evals import OPENAPI_PATHS as EVAL_PATHS
from modelyard.server.admin_input import GROUPS, MAX_DOLLARS, MAX_RATE, MAX_ROWS

Schema = dict[str, Any]
_TEXT = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]*$"
_DEPLOYMENT = r"^[^,\u0000-\u001f\u007f]{1,128}$"
PROJECT_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
KEY_ID = r"^[a-z0-9]{12}$"
DURATION = r"^[0-9]{1,7}[smhdw]$"
_ERRORS = {
    400: "The input is wrong; `error.param` names the field.",
    401: "No key, an unknown, revoked or expired key.",
    403: "The key's role may not do this.",
    404: "No such project or key.",
    409: "The project already exists.",
    413: "The body is larger than 64 KiB.",
    503: "The server has no store, or the store is unavailable.",
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(properties: dict[str, Schema], required: tuple[str, ...] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
    }


def _rate(what: str) -> Schema:
    return {
        "description": f"{what} per minute; null: no limit.",
        "anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_RATE}, {"type": "null"}],
    }


def _budget(period: str) -> Schema:
    return {
        "description": f"{period} budget in US dollars, exact to a micro-dollar; null: none.",
        "anyOf": [
            {"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,6})?$"},
            {"type": "number", "minimum": 0, "maximum": MAX_DOLLARS},
            {"type": "null"},
        ],
    }


def _limit_inputs() -> dict[str, Schema]:
    return {
        "rpm": _rate("Requests"),
        "tpm": _rate("Tokens"),
        "daily_budget_usd": _budget("Daily (UTC day)"),
        "monthly_budget_usd": _budget("Monthly (UTC month)"),
    }


def _limit_outputs() -> dict[str, Schema]:
    count = _nullable({"type": "integer"})
    return {
        "rpm": count,
        "tpm": count,
        "daily_budget_usd": _nullable({"type": "string"}),
        "monthly_budget_usd": _nullable({"type": "string"}),
        "daily_budget_micros": count,
        "monthly_budget_micros": count,
    }


def _time() -> Schema:
    return _nullable({"type": "string", "format": "date-time"})


def _input_schemas() -> dict[str, Schema]:
    text = {"type": "string", "pattern": _TEXT}
    return {
        "ProjectCreate": {
            **_obj(
                {
                    "id": {"type": "string", "pattern": PROJECT_ID},
                    "description": _nullable({**text, "maxLength": 2000}),
                    **_limit_inputs(),
                },
                ("id",),
            ),
            "additionalProperties": False,
        },
        "LimitsPatch": {
            **_obj(_limit_inputs(), ()),
            "additionalProperties": False,
            "description": "Fields given replace the limit; null clears it; absent ones stay.",
        },
        "KeyCreate": {
            **_obj(
                {
                    "project": _nullable({"type": "string", "pattern": PROJECT_ID}),
                    "role": {"type": "string", "enum": ["member", "owner", "operator"]},
                    "name": _nullable({**text, "maxLength": 128}),
                    "deployments": _nullable(
                        {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 1000,
                            "items": {"type": "string", "pattern": _DEPLOYMENT},
                        }
                    ),
                    "expires_in": _nullable({"type": "string", "pattern": DURATION}),
                    **_limit_inputs(),
                },
                (),
            ),
            "additionalProperties": False,
            "description": "A member or owner key needs `project`; an operator key has none. "
            "`deployments` must name deployments the server serves; `expires_in` is at most "
            "3650d.",
        },
    }


def _output_schemas() -> dict[str, Schema]:
    string = {"type": "string"}
    key = _obj(
        {
            "object": {"const": "api_key"},
            "id": {"type": "string", "pattern": KEY_ID},
            "name": _nullable(string),
            "role": {"type": "string", "enum": ["member", "owner", "operator"]},
            "project": _nullable(string),
            "deployments": _nullable({"type": "array", "items": string}),
            **_limit_outputs(),
            "status": {"type": "string", "enum": ["active", "revoked", "expired"]},
            "expires_at": _time(),
            "revoked_at": _time(),
            "created_at": {"type": "string", "format": "date-time"},
        }
    )
    return {
        "Project": _obj(
            {
                "object": {"const": "project"},
                "id": string,
                "description": _nullable(string),
                **_limit_outputs(),
                "created_at": {"type": "string", "format": "date-time"},
            }
        ),
        "ApiKey": key,
        "NewApiKey": {
            "allOf": [
                _ref("ApiKey"),
                _obj({"secret": {**string, "description": "Shown only here."}, "warning": string}),
            ]
        },
        "Limits": _obj(_limit_outputs()),
        "Principal": _obj(
            {
                "object": {"const": "principal"},
                "key_id": _nullable(string),
                "role": {"type": "string", "enum": ["member", "owner", "operator"]},
                "project": _nullable(string),
                "deployments": _nullable({"type": "array", "items": string}),
                "key_limits": _ref("Limits"),
                "project_limits": _ref("Limits"),
            }
        ),
        **_report_schemas(),
    }


def _report_schemas() -> dict[str, Schema]:
    string = {"type": "string"}
    integer = {"type": "integer", "minimum": 0}
    totals = {
        name: integer
        for name in (
            "requests",
            "errors",
            "input_tokens",
            "output_tokens",
            "cached_input_tokens",
            "reasoning_tokens",
            "cost_micros",
        )
    }
    target = _obj({"provider": string, "model": string, "weight": {"type": "number"}})
    shadow = _obj({"provider": string, "model": string, "percent": {"type": "number"}})
    return {
        "Deployment": _obj(
            {
                "object": {"const": "deployment"},
                "name": string,
                "description": _nullable(string),
                "strategy": {"type": "string", "enum": ["failover", "weighted", "latency", "cost"]},
                "targets": {"type": "array", "items": target},
                "shadow": _nullable(shadow),
            }
        ),
        "UsageTotals": _obj({**totals, "cost_usd": string}),
        "UsageReport": _obj(
            {
                "object": {"const": "list"},
                "by": {"type": "string", "enum": list(GROUPS)},
                "filter": _obj(
                    {
                        n: _nullable(string)
                        for n in ("project", "key", "deployment", "since", "until")
                    }
                ),
                "data": {
                    "type": "array",
                    "description": "One row per group; the group's value is under the `by` name.",
                    "items": _obj({**totals, "cost_usd": string}),
                },
                "totals": _ref("UsageTotals"),
            }
        ),
        "Error": _obj(
            {
                "error": _obj(
                    {
                        "message": string,
                        "type": string,
                        "param": _nullable(string),
                        "code": _nullable(string),
                    }
                )
            }
        ),
    }


def _list(item: str) -> Schema:
    return _obj({"object": {"const": "list"}, "data": {"type": "array", "items": _ref(item)}})


def _json_body(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: tuple[int, Schema, str], errors: tuple[int, ...], **extra: Any) -> Schema:
    status, schema, description = ok
    responses: dict[str, Schema] = {str(status): _json_body(schema, description)}
    for code in errors:
        responses[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    return {"summary": summary, "responses": responses, **extra}


def _body(name: str) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _param(name: str, where: str, schema: Schema, description: str = "") -> Schema:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


def _usage_params(grouped: bool) -> list[Schema]:
    params = [
        _param("project", "query", {"type": "string", "pattern": PROJECT_ID}),
        _param("key", "query", {"type": "string", "pattern": KEY_ID}, "a key id"),
        _param("deployment", "query", {"type": "string", "pattern": _DEPLOYMENT}),
        _param("since", "query", {"type": "string"}, "ISO 8601, or a duration back (7d)"),
        _param("until", "query", {"type": "string"}, "ISO 8601 (exclusive), or a duration back"),
        _param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": MAX_ROWS},
            "CSV: at most this many rows (default 10000)",
        ),
    ]
    if grouped:
        params += [
            _param("by", "query", {"type": "string", "enum": list(GROUPS)}, "default model"),
            _param("format", "query", {"type": "string", "enum": ["json", "csv"]}),
        ]
    return params


def _csv_response() -> Schema:
    return {
        "description": "The per-request ledger rows, a header row first.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }


def _project_paths() -> dict[str, Schema]:
    pid = [_param("project_id", "path", {"type": "string", "pattern": PROJECT_ID})]
    return {
        "/admin/v1/projects": {
            "get": _op(
                "Projects the caller may see", (200, _list("Project"), "Projects"), (401, 503)
            ),
            "post": _op(
                "Create a project (operator)",
                (201, _ref("Project"), "The new project"),
                (400, 401, 403, 409, 413, 503),
                requestBody=_body("ProjectCreate"),
            ),
        },
        "/admin/v1/projects/{project_id}": {
            "get": _op(
                "One project (operator, or its owner or member)",
                (200, _ref("Project"), "The project"),
                (400, 401, 403, 404, 503),
                parameters=pid,
            ),
            "patch": _op(
                "Change a project's limits (operator)",
                (200, _ref("Project"), "The project as changed"),
                (400, 401, 403, 404, 413, 503),
                parameters=pid,
                requestBody=_body("LimitsPatch"),
            ),
        },
    }


def _key_paths() -> dict[str, Schema]:
    kid = [_param("key_id", "path", {"type": "string", "pattern": KEY_ID})]
    key = (200, _ref("ApiKey"), "The key (never its secret or digest)")
    revoke = "Revoke a key: it stops working on every server within a second"
    return {
        "/admin/v1/keys": {
            "get": _op(
                "Keys of a project (owner) or of all projects (operator)",
                (200, _list("ApiKey"), "Keys"),
                (400, 401, 403, 503),
                parameters=[_param("project", "query", {"type": "string", "pattern": PROJECT_ID})],
            ),
            "post": _op(
                "Create a key (operator; an owner in its own project); the secret is shown once",
                (201, _ref("NewApiKey"), "The key with its secret"),
                (400, 401, 403, 404, 413, 503),
                requestBody=_body("KeyCreate"),
            ),
        },
        "/admin/v1/keys/{key_id}": {
            "get": _op("One key", key, (400, 401, 403, 404, 503), parameters=kid),
            "patch": _op(
                "Change a key's limits",
                key,
                (400, 401, 403, 404, 413, 503),
                parameters=kid,
                requestBody=_body("LimitsPatch"),
            ),
            "delete": _op(revoke, key, (400, 401, 403, 404, 503), parameters=kid),
        },
        "/admin/v1/keys/{key_id}/revoke": {
            "post": _op(revoke, key, (400, 401, 403, 404, 503), parameters=kid),
        },
    }


def _other_paths() -> dict[str, Schema]:
    report = _json_body(_ref("UsageReport"), "Totals per group")
    report["content"]["text/csv"] = _csv_response()["content"]["text/csv"]
    usage = _op(
        "Usage grouped by project, key, deployment, model or day (format=csv: ledger rows)",
        (200, _ref("UsageReport"), ""),
        (400, 401, 403, 503),
        parameters=_usage_params(grouped=True),
    )
    usage["responses"]["200"] = report
    csv_op = _op(
        "The per-request usage ledger as CSV",
        (200, {}, ""),
        (400, 401, 403, 503),
        parameters=_usage_params(grouped=False),
    )
    csv_op["responses"]["200"] = _csv_response()
    return {
        "/admin/v1/me": {
            "get": _op("The calling key", (200, _ref("Principal"), "Who calls"), (401,)),
        },
        "/admin/v1/deployments": {
            "get": _op(
                "Deployments the caller's key may call, with their targets",
                (200, _list("Deployment"), "Deployments"),
                (401,),
            ),
        },
        "/admin/v1/usage": {"get": usage},
        "/admin/v1/usage.csv": {"get": csv_op},
        "/admin/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": _json_body({"type": "object"}, "OpenAPI 3.1")},
            }
        },
    }


def openapi_document() -> Schema:
    """The whole document; roles: operator (everything), owner (its project), member (itself)."""
    error = _json_body(_ref("Error"), "")
    responses = {
        f"E{code}": {**error, "description": text} for code, text in sorted(_ERRORS.items())
    }
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
        "paths": {**_project_paths(), **_key_paths(), **_other_paths(), **EVAL_PATHS},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API key"}
            },
            "schemas": {**_input_schemas(), **_output_schemas()},
            "responses": responses,
        },
    }
