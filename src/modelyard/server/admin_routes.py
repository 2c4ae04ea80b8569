"""The admin API under ``/admin/v1``: projects, keys, limits, deployments (read), usage, me.

Thin routes: ``OPERATIONS`` lists every route with its input and response models
(``services/admin_models.py``); ``admin_http.endpoint`` authenticates, validates the path, the
query and the body with those models (a mistake is a 400 naming the field), calls the handler,
which calls ``TenancyAdmin`` (which makes every role check, so the CLI and this API cannot
disagree), and renders the model it returns. The OpenAPI document is generated from the same
list (and the evaluation routes' list in ``admin_evals``). Errors use the OpenAI error shape.
The admin API never serves anonymous callers: a server without any key is open for model calls
on loopback, not for administration. Writes bump the store's tenancy generation; the server
that made the write reloads its keys before it answers, every other server within its poll
interval (0.5 s), and a server shown a key it does not hold yet looks in the store first, so
created and revoked keys act without a restart.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from modelyard.core.errors import InvalidRequest, NotFound
from modelyard.server.admin_agents import AGENT_OPERATIONS
from modelyard.server.admin_evals import EVAL_OPERATIONS
from modelyard.server.admin_http import Call, endpoint
from modelyard.server.admin_openapi import Operation, document
from modelyard.server.admin_sessions import SESSION_OPERATIONS
from modelyard.server.http import json_response, request_id
from modelyard.services import admin_models as models
from modelyard.services import audit
from modelyard.services import usage_steps as steps_models
from modelyard.services.tenancy import check_policy_name, require_operator
from modelyard.services.usage_export import records_csv
from modelyard.tenancy.model import UsageFilter

PREFIX = "/admin/v1"


# --- projects -------------------------------------------------------------------------------


async def list_projects(call: Call) -> models.ProjectList:
    found = await call.admin.projects(call.principal)
    return models.ProjectList(data=[models.Project.of_project(p) for p in found])


async def create_project(call: Call) -> models.Project:
    body = call.given(models.ProjectCreate)
    check_policy_name(body.guardrails, call.state.gateway.policies.names())
    project = await call.admin.create_project(
        call.principal, body.id, body.description, body.limits(), body.guardrails
    )
    return models.Project.of_project(project)


async def get_project(call: Call) -> models.Project:
    project_id = call.given(models.ProjectPath).project_id
    return models.Project.of_project(await call.admin.project(call.principal, project_id))


async def patch_project(call: Call) -> models.Project:
    project_id = call.given(models.ProjectPath).project_id
    current = await call.admin.project(call.principal, project_id)
    body = call.given(models.Patch)
    policy = body.policy(current.guardrails)
    if policy != current.guardrails:  # checked before anything is written
        check_policy_name(policy, call.state.gateway.policies.names())
    limits = body.limits(current.limits)
    project = await call.admin.set_project_limits(call.principal, project_id, limits)
    if policy != current.guardrails:
        project = await call.admin.set_project_guardrails(call.principal, project_id, policy)
    await call.state.keys_changed()  # the project's keys carry its limits and policy
    return models.Project.of_project(project)


# --- keys -----------------------------------------------------------------------------------


async def list_keys(call: Call) -> models.KeyList:
    project_id = call.given(models.KeysQuery).project
    if project_id is None and call.principal.role != "operator":
        project_id = call.principal.project_id  # an owner's own project by default
    found = await call.admin.keys(call.principal, project_id)
    return models.KeyList(data=[models.ApiKey.of_key(k, call.now) for k in found])


async def create_key(call: Call) -> models.NewApiKey:
    spec = call.given(models.KeyCreate).spec()
    check_policy_name(spec.guardrails, call.state.gateway.policies.names())
    known = set(call.state.gateway.table.names)
    unknown = [n for n in spec.deployments or () if n not in known]
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise InvalidRequest(
            f"deployments: no deployment {unknown[0]!r}; deployments: {listed}",
            param="deployments",
            code="invalid_value",
        )
    key, fresh = await call.admin.create_key(call.principal, spec)
    await call.state.keys_changed()  # the key works here from its first call, with its limits
    return models.NewApiKey.of_new(key, fresh.secret, call.now)


async def get_key(call: Call) -> models.ApiKey:
    key = await call.admin.key(call.principal, call.given(models.KeyPath).key_id)
    return models.ApiKey.of_key(key, call.now)


async def patch_key(call: Call) -> models.ApiKey:
    key_id = call.given(models.KeyPath).key_id
    current = await call.admin.key(call.principal, key_id)
    body = call.given(models.Patch)
    policy = body.policy(current.guardrails)
    if policy != current.guardrails:
        check_policy_name(policy, call.state.gateway.policies.names())
    limits = body.limits(current.limits)
    key = await call.admin.update_key(call.principal, key_id, limits, policy)
    await call.state.keys_changed()
    return models.ApiKey.of_key(key, call.now)


async def revoke_key(call: Call) -> models.ApiKey:
    key = await call.admin.revoke_key(call.principal, call.given(models.KeyPath).key_id)
    await call.state.keys_changed()  # refused here before this answer leaves
    return models.ApiKey.of_key(key, call.now)


# --- deployments, usage, me -----------------------------------------------------------------


async def list_deployments(call: Call) -> models.DeploymentList:
    table = call.state.gateway.table
    allowed = call.principal.deployments
    data = [
        models.Deployment.of(table.resolve(name))
        for name in sorted(table.names)
        if allowed is None or name in allowed
    ]
    return models.DeploymentList(data=data)


async def usage(call: Call) -> models.UsageReport | Response:
    query = call.given(models.UsageQuery)
    where = query.filter()
    if query.format == "csv":
        return await _csv(call, where, query.limit)
    rows = [
        models.UsageRow.of_row(r) for r in await call.admin.usage(call.principal, query.by, where)
    ]
    return models.UsageReport(
        by=query.by,
        filter=models.UsageFilterShown.of(where),
        data=rows,
        totals=models.UsageTotals.of_rows([r.model_dump() for r in rows]),
    )


async def usage_steps(call: Call) -> steps_models.UsageSteps:
    parent_id = call.given(steps_models.StepsPath).parent_id
    records = await call.admin.usage_steps(call.principal, parent_id)
    if not records:
        raise NotFound(f"no ledger steps of {parent_id!r}", param="parent_id")
    return steps_models.UsageSteps.of(parent_id, records)


async def usage_csv(call: Call) -> Response:
    query = call.given(models.UsageCsvQuery)
    return await _csv(call, query.filter(), query.limit)


async def _csv(call: Call, where: UsageFilter, limit: int) -> Response:
    records = await call.admin.usage_records(call.principal, where, limit)
    headers = {
        "x-request-id": call.rid,
        "content-disposition": 'attachment; filename="usage.csv"',
        "x-modelyard-truncated": "true" if len(records) >= limit else "false",
    }
    return StreamingResponse(
        records_csv(records), media_type="text/csv; charset=utf-8", headers=headers
    )


async def explain_guardrails(call: Call) -> models.GuardrailsExplanation:
    """The effective guardrail policy of a call (operator): key, then project, deployment,
    default. A key's project is looked up when not given. A deployment need not exist (yet):
    attachments are by name, as in the config."""
    require_operator(call.principal)
    query = call.given(models.GuardrailsQuery)
    project = query.project
    key_policy = project_policy = None
    if query.key is not None and call.state.admin is not None:
        try:
            key = await call.admin.key(call.principal, query.key)
        except NotFound:
            if project is None:
                raise  # its project cannot be found either
        else:  # a key only the config names (with its project given) is not stored
            key_policy, project = key.guardrails, project or key.project_id
    if project is not None and call.state.admin is not None:
        project_policy = await _project_policy(call, project)
    shown = call.state.gateway.policies.explain(
        query.key, project, query.deployment, key_policy, project_policy
    )
    return models.GuardrailsExplanation.model_validate(shown)


async def _project_policy(call: Call, project_id: str) -> str | None:
    """The policy the admin API attached to a project (a project not stored yet: none)."""
    try:
        return (await call.admin.project(call.principal, project_id)).guardrails
    except NotFound:
        return None


async def audit_log(call: Call) -> audit.AuditList:
    """The audit log (operator), oldest first, filtered by actor, kind and time."""
    require_operator(call.principal)
    query = call.given(audit.AuditQuery)
    found = await audit.entries(call.store, query.filter(), query.limit)
    return audit.listing(found, query.limit)


async def audit_export(call: Call) -> Response:
    """The same entries as JSON lines, one object per line (operator)."""
    require_operator(call.principal)
    query = call.given(audit.AuditQuery)
    found = await audit.entries(call.store, query.filter(), query.limit)
    headers = {
        "x-request-id": call.rid,
        "content-disposition": 'attachment; filename="audit.jsonl"',
    }
    return StreamingResponse(
        audit.json_lines(found), media_type="application/x-ndjson", headers=headers
    )


async def me(call: Call) -> models.Principal:
    return models.Principal.of(call.principal)


_ANY = (400, 401, 403, 503)
_KEY = (200, models.ApiKey, "The key (never its secret or digest)")
_REVOKE = "Revoke a key: refused here at once, on every other server within 0.5 s"
OPERATIONS = (
    Operation(
        "GET", "/guardrails/explain",
        "The guardrail policy a call would get, and its guards in order (operator)",
        explain_guardrails, answer=(200, models.GuardrailsExplanation, "The policy"),
        errors=(*_ANY, 404), query=models.GuardrailsQuery,  # 404: an unknown key
    ),
    Operation(
        "GET", "/audit", "Administrative changes: who, when, from where, before and after "
        "(operator)", audit_log, answer=(200, audit.AuditList, "Entries, oldest first"),
        errors=_ANY, query=audit.AuditQuery,
    ),
    Operation(
        "GET", "/audit.jsonl", "The audit log as JSON lines (operator)", audit_export,
        answer=(200, None, "One entry per line, as in /audit"), errors=_ANY,
        query=audit.AuditQuery, media_type="application/x-ndjson",
    ),
    Operation(
        "GET", "/me", "The calling key", me,
        answer=(200, models.Principal, "Who calls"), errors=(401,),
    ),
    Operation(
        "GET", "/projects", "Projects the caller may see", list_projects,
        answer=(200, models.ProjectList, "Projects"), errors=(401, 503),
    ),
    Operation(
        "POST", "/projects", "Create a project (operator)", create_project,
        answer=(201, models.Project, "The new project"),
        errors=(400, 401, 403, 409, 413, 503), body=models.ProjectCreate,
        audit="project.create",
    ),
    Operation(
        "GET", "/projects/{project_id}", "One project (operator, or its owner or member)",
        get_project, answer=(200, models.Project, "The project"),
        errors=(*_ANY, 404), path_params=models.ProjectPath,
    ),
    Operation(
        "PATCH", "/projects/{project_id}",
        "Change a project's limits and guardrail policy (operator)", patch_project,
        answer=(200, models.Project, "The project as changed"),
        errors=(*_ANY, 404, 413), path_params=models.ProjectPath, body=models.Patch,
        audit="project.update", before=get_project,
    ),
    Operation(
        "GET", "/keys", "Keys of a project (owner) or of all projects (operator)", list_keys,
        answer=(200, models.KeyList, "Keys"), errors=_ANY, query=models.KeysQuery,
    ),
    Operation(
        "POST", "/keys",
        "Create a key (operator; an owner in its own project); the secret is shown once",
        create_key, answer=(201, models.NewApiKey, "The key with its secret"),
        errors=(*_ANY, 404, 413), body=models.KeyCreate, audit="key.create",
    ),
    Operation(
        "GET", "/keys/{key_id}", "One key", get_key,
        answer=_KEY, errors=(*_ANY, 404), path_params=models.KeyPath,
    ),
    Operation(
        "PATCH", "/keys/{key_id}", "Change a key's limits and guardrail policy", patch_key,
        answer=_KEY, errors=(*_ANY, 404, 413), path_params=models.KeyPath,
        body=models.Patch, audit="key.update", before=get_key,
    ),
    Operation(
        "DELETE", "/keys/{key_id}", _REVOKE, revoke_key,
        answer=_KEY, errors=(*_ANY, 404), path_params=models.KeyPath,
        audit="key.revoke", before=get_key,
    ),
    Operation(
        "POST", "/keys/{key_id}/revoke", _REVOKE, revoke_key,
        answer=_KEY, errors=(*_ANY, 404), path_params=models.KeyPath,
        audit="key.revoke", before=get_key,
    ),
    Operation(
        "GET", "/deployments", "Deployments the caller's key may call, with their targets",
        list_deployments, answer=(200, models.DeploymentList, "Deployments"), errors=(401,),
    ),
    Operation(
        "GET", "/usage",
        "Usage grouped by project, key, deployment, model or day (format=csv: ledger rows)",
        usage, answer=(200, models.UsageReport, "Totals per group"), errors=_ANY,
        query=models.UsageQuery, csv_too=True,
    ),
    Operation(
        "GET", "/usage/steps/{parent_id}",
        "One request's steps (a response's model calls and tool runs), in order",
        usage_steps, answer=(200, steps_models.UsageSteps, "The steps"), errors=(*_ANY, 404),
        path_params=steps_models.StepsPath,
    ),
    Operation(
        "GET", "/usage.csv", "The per-request usage ledger as CSV", usage_csv,
        answer=(200, None, "The per-request ledger rows, a header row first."), errors=_ANY,
        query=models.UsageCsvQuery,
    ),
)  # fmt: skip


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document, generated from the operations (``OPERATIONS`` and the
    evaluation routes') and their models."""
    return document(PREFIX, (*OPERATIONS, *AGENT_OPERATIONS, *EVAL_OPERATIONS, *SESSION_OPERATIONS))


@functools.cache
def _document() -> bytes:
    return orjson.dumps(openapi_document())


async def openapi(request: Request) -> Response:
    """The OpenAPI 3.1 document of this API; public, like any API's reference. Generated at
    its first request, in a worker thread, then kept: pydantic's schema generation takes
    about 80 ms of CPU, which a server that is never asked for it need not spend at start."""
    body = await asyncio.to_thread(_document)
    return json_response(body, headers={"x-request-id": request_id(request)})


ROUTES = [
    Route(f"{PREFIX}/openapi.json", openapi, methods=["GET"]),
    *(Route(PREFIX + op.path, endpoint(op), methods=[op.method]) for op in OPERATIONS),
    *(Route(PREFIX + op.path, endpoint(op), methods=[op.method]) for op in AGENT_OPERATIONS),
    *(Route(PREFIX + op.path, endpoint(op), methods=[op.method]) for op in SESSION_OPERATIONS),
]
