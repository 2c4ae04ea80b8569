"""What every ``/admin/v1`` route shares: authentication, inputs checked against the
operation's models, rendering the model a handler returns, errors in the OpenAI error shape.

``endpoint(op)`` turns an ``Operation`` (``admin_openapi.py``) into a Starlette endpoint: it
authenticates (the admin API never serves anonymous callers), validates the path, the query and
the body with the operation's models (a mistake is a 400 naming the field), calls the handler
with a ``Call`` and renders what it returns. A store error is a 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from modelyard.core.errors import AuthenticationFailed, InvalidRequest, ModelyardError, NotFound
from modelyard.protocols.openai import errors
from modelyard.server.admin_openapi import Operation
from modelyard.server.chat_route import authenticate, state_of
from modelyard.server.http import json_response, read_json, request_id
from modelyard.services import audit
from modelyard.services.acting import PROJECT_HEADER, key_acting_in, must_exist, requested_project
from modelyard.services.admin_fields import parse, single_values
from modelyard.services.root import Root
from modelyard.services.sign_in import looks_like_jwt
from modelyard.services.tenancy import TenancyAdmin
from modelyard.store import Store, StoreError
from modelyard.tenancy.keys import Principal, bearer_token
from modelyard.tenancy.model import AuditEntry

MAX_BODY = 64 * 1024
M = TypeVar("M", bound=BaseModel)


class Conflict(InvalidRequest):
    status = 409


class AdminUnavailable(ModelyardError):
    status = 503


@dataclass(frozen=True, slots=True)
class Call:
    """One admin request: who calls, with what state, at what time, with its checked input."""

    request: Request
    state: Root
    principal: Principal
    rid: str
    now: datetime
    inputs: tuple[BaseModel, ...]  # the query, path and body models the operation takes

    @property
    def admin(self) -> TenancyAdmin:
        if self.state.admin is None:
            raise AdminUnavailable(
                "this server has no store: projects, keys and usage need one "
                "(start it with 'modelyard serve')",
                code="no_store",
            )
        return self.state.admin

    @property
    def store(self) -> Store:
        """The store (a server without one answers 503, as ``admin`` does)."""
        store = self.state.store
        if store is None:
            raise AdminUnavailable("this server has no store", code="no_store")
        return store

    def given(self, model: type[M]) -> M:
        """The validated input of type ``model`` (the operation declares it)."""
        for value in self.inputs:
            if isinstance(value, model):
                return value
        raise TypeError(f"{model.__name__} is not an input of this operation")


def _error(err: ModelyardError, rid: str) -> Response:
    return json_response(errors.error_body(err), err.status, {"x-request-id": rid})


def _translate(err: ModelyardError) -> ModelyardError:
    if isinstance(err, StoreError):
        return AdminUnavailable(f"the store is unavailable: {err.message}", code="store_error")
    if isinstance(err, InvalidRequest) and err.code == "project_exists":
        return Conflict(err.message, param=err.param, code=err.code)
    return err


async def _inputs(op: Operation, request: Request, now: datetime) -> tuple[BaseModel, ...]:
    """The query, path and body of ``request`` checked against ``op``'s models, in that order."""
    query = single_values(request.query_params.multi_items())
    found: list[BaseModel] = [parse(op.query, query, "query", now)]
    if op.path_params is not None:
        found.append(parse(op.path_params, request.path_params, "path"))
    if op.body is not None:
        found.append(parse(op.body, await read_json(request, MAX_BODY), "body"))
    return tuple(found)


async def _principal(state: Root, request: Request) -> Principal:
    """The caller: a single sign-on access token (a JWT, when ``sso:`` is configured), else a
    key. Only the admin API looks at tokens: model calls take keys. ``x-modelyard-project``
    chooses the project a caller with several acts in (``services/acting.py``)."""
    project = requested_project(request.headers.get(PROJECT_HEADER))
    principal: Principal | None = None
    if state.sso is not None:
        token = bearer_token(request.headers.get("authorization"), None)
        if token is not None and looks_like_jwt(token):
            principal = await state.sso.principal_of(token, project)
    if principal is None:
        principal = await authenticate(state, request)
        if project is not None and not principal.anonymous:
            principal = key_acting_in(principal, project)
    if project is not None and not principal.anonymous:
        await must_exist(state.admin, principal, project)
    return principal


async def _audited(op: Operation, call: Call) -> BaseModel | Response:
    """Run ``op``'s handler and append what it changed to the audit log, before answering."""
    before = None
    if op.before is not None:
        try:
            before = await op.before(call)
        except NotFound:
            before = None  # the handler answers the 404 itself
    answer = await op.handler(call)
    store = call.state.store
    if store is not None:
        after = answer if isinstance(answer, BaseModel) else None
        client = call.request.client
        await audit.record(
            store,
            AuditEntry(
                call.now, audit.actor_of(call.principal), client.host if client else None,
                op.audit_kind or "", _target(call, after), audit.snapshot(before),
                audit.snapshot(after), call.rid,
            ),
        )  # fmt: skip
    return answer


def _target(call: Call, after: BaseModel | None) -> str | None:
    """The changed object's id: the path's (``/keys/{key_id}``), else the answer's ``id``."""
    for value in call.request.path_params.values():
        return str(value)[:200]
    found = getattr(after, "id", None)
    return str(found)[:200] if found is not None else None


def endpoint(op: Operation) -> Callable[[Request], Awaitable[Response]]:
    status = op.answer[0]

    async def run(request: Request) -> Response:
        rid = request_id(request)
        state = state_of(request)
        try:
            principal = await _principal(state, request)
            if principal.anonymous:
                raise AuthenticationFailed(
                    "the admin API needs a key: set MODELYARD_ADMIN_KEY or run "
                    "'modelyard admin init'",
                    code="missing_api_key",
                )
            now = datetime.now(UTC)
            inputs = await _inputs(op, request, now)
            call = Call(request, state, principal, rid, now, inputs)
            answer = await _audited(op, call) if op.audit_kind else await op.handler(call)
            if isinstance(answer, BaseModel):
                body = answer.model_dump_json().encode()
                answer = json_response(body, status, {"x-request-id": rid})
        except ModelyardError as exc:
            answer = _error(_translate(exc), rid)
        return answer

    return run
