"""The admin API under ``/admin/v1``: projects, keys, limits, deployments (read), usage, me.

Thin routes: authenticate, read and check the input strictly (``admin_input``), call
``TenancyAdmin`` (which makes every role check, so the CLI and this API cannot disagree), render
(``admin_views``). Errors use the OpenAI error shape. The admin API never serves anonymous
callers: a server without any key is open for model calls on loopback, not for administration.
Writes bump the store's tenancy generation; every server's key refresher picks them up within
its poll interval (0.5 s), so created and revoked keys act without a restart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from modelyard.core.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelyardError,
)
from modelyard.protocols.openai import errors
from modelyard.server import admin_input as check
from modelyard.server import admin_views as view
from modelyard.server.admin_schema import openapi_document
from modelyard.server.chat_route import authenticate, state_of
from modelyard.server.http import json_response, read_json, request_id
from modelyard.services.root import Root as AppState
from modelyard.services.tenancy import KeySpec, TenancyAdmin
from modelyard.store import StoreError
from modelyard.store.usage import UsageFilter
from modelyard.tenancy.keys import Principal

PREFIX = "/admin/v1"
MAX_BODY = 64 * 1024
PROJECT_FIELDS = ("id", "description", *check.LIMIT_FIELDS)
KEY_FIELDS = ("project", "role", "name", "deployments", "expires_in", *check.LIMIT_FIELDS)


class Conflict(InvalidRequest):
    status = 409


class AdminUnavailable(ModelyardError):
    status = 503


@dataclass(frozen=True, slots=True)
class Call:
    """One admin request: who calls, with what state, at what time."""

    request: Request
    state: AppState
    principal: Principal
    rid: str
    now: datetime

    @property
    def admin(self) -> TenancyAdmin:
        if self.state.admin is None:
            raise AdminUnavailable(
                "this server has no store: projects, keys and usage need one "
                "(start it with 'modelyard serve')",
                code="no_store",
            )
        return self.state.admin

    def params(self, accepted: Sequence[str]) -> dict[str, str]:
        query = self.request.query_params
        check.only_params(query, [k for k, _ in query.multi_items()], accepted)
        return dict(query)

    async def body(self, accepted: Sequence[str]) -> dict[str, Any]:
        return check.body_object(await read_json(self.request, MAX_BODY), accepted)


Handler = Callable[[Call], Awaitable[Response]]


def _json(payload: Any, rid: str, status: int = 200) -> Response:
    return json_response(orjson.dumps(payload), status, {"x-request-id": rid})


def _error(err: ModelyardError, rid: str) -> Response:
    return json_response(errors.error_body(err), err.status, {"x-request-id": rid})


def _translate(err: ModelyardError) -> ModelyardError:
    if isinstance(err, StoreError):
        return AdminUnavailable(f"the store is unavailable: {err.message}", code="store_error")
    if isinstance(err, InvalidRequest) and err.code == "project_exists":
        return Conflict(err.message, param=err.param, code=err.code)
    return err


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        rid = request_id(request)
        state = state_of(request)
        try:
            principal = authenticate(state, request)
            if principal.anonymous:
                raise AuthenticationFailed(
                    "the admin API needs a key: set MODELYARD_ADMIN_KEY or run "
                    "'modelyard admin init'",
                    code="missing_api_key",
                )
            response = await handler(Call(request, state, principal, rid, datetime.now(UTC)))
        except ModelyardError as exc:
            response = _error(_translate(exc), rid)
        return response

    return run


# --- projects -------------------------------------------------------------------------------


async def list_projects(call: Call) -> Response:
    call.params(())
    found = await call.admin.projects(call.principal)
    return _json({"object": "list", "data": [view.project_json(p) for p in found]}, call.rid)


async def create_project(call: Call) -> Response:
    call.params(())
    body = await call.body(PROJECT_FIELDS)
    if body.get("id") is None:
        raise check.bad("id", "is required")
    project_id = check.project_id(body["id"])
    description = check.optional_text(body, "description", max_len=2000)
    limits = check.limits_from(body)
    project = await call.admin.create_project(call.principal, project_id, description, limits)
    return _json(view.project_json(project), call.rid, 201)


async def get_project(call: Call) -> Response:
    call.params(())
    project_id = check.project_id(call.request.path_params["project_id"], "project_id")
    project = await call.admin.project(call.principal, project_id)
    return _json(view.project_json(project), call.rid)


async def patch_project(call: Call) -> Response:
    call.params(())
    project_id = check.project_id(call.request.path_params["project_id"], "project_id")
    body = await call.body(check.LIMIT_FIELDS)
    current = await call.admin.project(call.principal, project_id)
    limits = check.limits_from(body, current.limits)
    project = await call.admin.set_project_limits(call.principal, project_id, limits)
    return _json(view.project_json(project), call.rid)


# --- keys -----------------------------------------------------------------------------------


async def list_keys(call: Call) -> Response:
    given = call.params(("project",)).get("project")
    project_id = check.project_id(given, "project") if given is not None else None
    if project_id is None and call.principal.role != "operator":
        project_id = call.principal.project_id  # an owner's own project by default
    found = await call.admin.keys(call.principal, project_id)
    return _json({"object": "list", "data": [view.key_json(k, call.now) for k in found]}, call.rid)


def _key_spec(call: Call, body: dict[str, Any]) -> KeySpec:
    role = body.get("role", "member")
    if role not in check.ROLES:
        raise check.bad("role", f"must be one of {', '.join(check.ROLES)}")
    project = body.get("project")
    project_id = check.project_id(project, "project") if project is not None else None
    if role == "operator" and project_id is not None:
        raise check.bad("project", "an operator key belongs to no project; leave project out")
    if role != "operator" and project_id is None:
        raise check.bad("project", "is required: a member or owner key belongs to a project")
    names = check.deployments(body.get("deployments"))
    known = set(call.state.gateway.table.names)
    unknown = [n for n in names or () if n not in known]
    if unknown:
        raise check.bad(
            "deployments",
            f"no deployment {unknown[0]!r}; deployments: {', '.join(sorted(known)) or 'none'}",
        )
    expires = body.get("expires_in")
    return KeySpec(
        project_id=project_id,
        role=role,
        name=check.optional_text(body, "name", max_len=128),
        deployments=names,
        limits=check.limits_from(body),
        expires_in=(
            check.duration(expires, "expires_in", check.MAX_EXPIRY) if expires is not None else None
        ),
    )


async def create_key(call: Call) -> Response:
    call.params(())
    spec = _key_spec(call, await call.body(KEY_FIELDS))
    key, fresh = await call.admin.create_key(call.principal, spec)
    return _json(view.new_key_json(key, fresh.secret, call.now), call.rid, 201)


def _path_key(call: Call) -> str:
    return check.key_id(call.request.path_params["key_id"])


async def get_key(call: Call) -> Response:
    call.params(())
    key = await call.admin.key(call.principal, _path_key(call))
    return _json(view.key_json(key, call.now), call.rid)


async def patch_key(call: Call) -> Response:
    call.params(())
    key_id = _path_key(call)
    body = await call.body(check.LIMIT_FIELDS)
    current = await call.admin.key(call.principal, key_id)
    limits = check.limits_from(body, current.limits)
    key = await call.admin.set_key_limits(call.principal, key_id, limits)
    return _json(view.key_json(key, call.now), call.rid)


async def revoke_key(call: Call) -> Response:
    call.params(())
    key = await call.admin.revoke_key(call.principal, _path_key(call))
    return _json(view.key_json(key, call.now), call.rid)


# --- deployments, usage, me -----------------------------------------------------------------


async def list_deployments(call: Call) -> Response:
    call.params(())
    table = call.state.gateway.table
    allowed = call.principal.deployments
    data = [
        view.deployment_json(table.resolve(name))
        for name in sorted(table.names)
        if allowed is None or name in allowed
    ]
    return _json({"object": "list", "data": data}, call.rid)


async def usage(call: Call) -> Response:
    query = check.usage_query(call.params(check.USAGE_PARAMS), call.now)
    where = UsageFilter(query.project_id, query.key_id, query.deployment, query.since, query.until)
    if query.format == "csv":
        return await _csv(call, where, query.limit)
    rows = await call.admin.usage(call.principal, query.by, where)
    payload = {
        "object": "list",
        "by": query.by,
        "filter": {
            "project": where.project_id,
            "key": where.key_id,
            "deployment": where.deployment,
            "since": view.stamp(where.since),
            "until": view.stamp(where.until),
        },
        "data": [view.usage_group_json(r) for r in rows],
        "totals": view.usage_totals(rows),
    }
    return _json(payload, call.rid)


async def usage_csv(call: Call) -> Response:
    accepted = tuple(p for p in check.USAGE_PARAMS if p not in ("by", "format"))
    query = check.usage_query(call.params(accepted), call.now)
    where = UsageFilter(query.project_id, query.key_id, query.deployment, query.since, query.until)
    return await _csv(call, where, query.limit)


async def _csv(call: Call, where: UsageFilter, limit: int) -> Response:
    records = await call.admin.usage_records(call.principal, where, limit)
    headers = {
        "x-request-id": call.rid,
        "content-disposition": 'attachment; filename="usage.csv"',
        "x-modelyard-truncated": "true" if len(records) >= limit else "false",
    }
    return StreamingResponse(
        view.records_csv(records), media_type="text/csv; charset=utf-8", headers=headers
    )


async def me(call: Call) -> Response:
    call.params(())
    return _json(view.principal_json(call.principal), call.rid)


_DOCUMENT = orjson.dumps(openapi_document())  # a constant: built once, at import


async def openapi(request: Request) -> Response:
    """The OpenAPI 3.1 document of this API; public, like any API's reference."""
    return json_response(_DOCUMENT, headers={"x-request-id": request_id(request)})


ROUTES = [
    Route(f"{PREFIX}/openapi.json", openapi, methods=["GET"]),
    Route(f"{PREFIX}/me", endpoint(me), methods=["GET"]),
    Route(f"{PREFIX}/projects", endpoint(list_projects), methods=["GET"]),
    Route(f"{PREFIX}/projects", endpoint(create_project), methods=["POST"]),
    Route(f"{PREFIX}/projects/{{project_id}}", endpoint(get_project), methods=["GET"]),
    Route(f"{PREFIX}/projects/{{project_id}}", endpoint(patch_project), methods=["PATCH"]),
    Route(f"{PREFIX}/keys", endpoint(list_keys), methods=["GET"]),
    Route(f"{PREFIX}/keys", endpoint(create_key), methods=["POST"]),
    Route(f"{PREFIX}/keys/{{key_id}}", endpoint(get_key), methods=["GET"]),
    Route(f"{PREFIX}/keys/{{key_id}}", endpoint(patch_key), methods=["PATCH"]),
    Route(f"{PREFIX}/keys/{{key_id}}", endpoint(revoke_key), methods=["DELETE"]),
    Route(f"{PREFIX}/keys/{{key_id}}/revoke", endpoint(revoke_key), methods=["POST"]),
    Route(f"{PREFIX}/deployments", endpoint(list_deployments), methods=["GET"]),
    Route(f"{PREFIX}/usage", endpoint(usage), methods=["GET"]),
    Route(f"{PREFIX}/usage.csv", endpoint(usage_csv), methods=["GET"]),
]
