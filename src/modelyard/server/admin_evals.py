"""Evaluation runs in the admin API: ``GET /admin/v1/evals/runs`` and ``.../runs/{id}``.

Read-only views of what ``modelyard eval run`` stored. Who sees what (``scope_for``): the
operator every run; a project owner the runs started with its project's keys; a member the runs
started with its own key. A run outside the caller's scope answers 404, like one that does not
exist. Errors use the OpenAI error shape; a server without a store answers 503.
``OPENAPI_PATHS`` describes both paths for the admin API's OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.core.errors import AuthenticationFailed, InvalidRequest, ModelyardError, NotFound
from modelyard.evals.store_recorder import (
    StoreRecorder,
    report_dict,
    run_json,
    scope_for,
    visible,
)
from modelyard.protocols.openai import errors
from modelyard.server.chat_route import authenticate, state_of
from modelyard.server.http import json_response, request_id
from modelyard.store import StoreError
from modelyard.tenancy.keys import Principal

PREFIX = "/admin/v1/evals"
RUNS_LIMIT = (20, 200)  # (default, maximum) runs per page
RESULTS_LIMIT = (100, 1000)  # (default, maximum) results per page


class EvalsUnavailable(ModelyardError):
    status = 503


Handler = Callable[[Request, Principal, StoreRecorder], Awaitable[Any]]
# Any database can skip this many rows (SQLite's integers are 64-bit; no listing is longer).
MAX_OFFSET = 1_000_000_000


def _page(request: Request, limits: tuple[int, int]) -> tuple[int, int]:
    """``limit`` and ``offset`` from the query; any other parameter is an error."""
    query = request.query_params
    for name in query:
        if name not in ("limit", "offset"):
            raise InvalidRequest(
                f"unknown query parameter {name!r}; accepted: limit, offset", param=name
            )
    default, maximum = limits
    limit = _int(query.get("limit"), "limit", default, 1, maximum)
    offset = _int(query.get("offset"), "offset", 0, 0, MAX_OFFSET)
    return limit, offset


def _int(raw: str | None, name: str, default: int, low: int, high: int | None) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidRequest(f"{name} must be an integer {bound}; got {raw!r}", param=name)
    return value


def _listing(data: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "total": total,
        "limit": limit,
        "offset": offset,
        "has_more": offset + len(data) < total,
    }


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        rid = request_id(request)
        state = state_of(request)
        headers = {"x-request-id": rid}
        try:
            principal = authenticate(state, request)
            if principal.anonymous:
                raise AuthenticationFailed(
                    "the admin API needs a key: set MODELYARD_ADMIN_KEY", code="missing_api_key"
                )
            if state.store is None:
                raise EvalsUnavailable(
                    "this server has no store: evaluation runs need one "
                    "(start it with 'modelyard serve')",
                    code="no_store",
                )
            payload = await handler(request, principal, StoreRecorder(state.store))
            response = json_response(orjson.dumps(payload), 200, headers)
        except StoreError as exc:
            err = EvalsUnavailable(f"the store is unavailable: {exc.message}", code="store_error")
            response = json_response(errors.error_body(err), err.status, headers)
        except ModelyardError as exc:
            response = json_response(errors.error_body(exc), exc.status, headers)
        return response

    return run


async def list_runs(request: Request, principal: Principal, recorder: StoreRecorder) -> Any:
    scope = scope_for(principal)
    limit, offset = _page(request, RUNS_LIMIT)
    runs = await recorder.list_runs(limit, offset, scope)
    total = await recorder.count_runs(scope)
    counts = await recorder.result_counts([r.id for r in runs])
    data = [run_json(r, counts.get(r.id, 0)) for r in runs]
    return _listing(data, total, limit, offset)


async def get_run(request: Request, principal: Principal, recorder: StoreRecorder) -> Any:
    scope = scope_for(principal)
    limit, offset = _page(request, RESULTS_LIMIT)
    run_id = request.path_params["run_id"]
    run = await recorder.get_run(run_id)
    if run is None or not visible(run, scope):
        raise NotFound(f"no evaluation run {run_id!r}", code="eval_run_not_found")
    # A finished run's report is stored; a running or interrupted one's is built from the
    # results so far (the whole report, whichever page of results is asked for).
    report = await recorder.report(run, with_results=False)
    page, total = await recorder.page(run_id, limit, offset)
    return {
        **run_json(run, total),
        "report": report_dict(report),
        "results": _listing([r.to_dict() for r in page], total, limit, offset),
    }


ROUTES = [
    Route(f"{PREFIX}/runs", endpoint(list_runs), methods=["GET"]),
    Route(f"{PREFIX}/runs/{{run_id}}", endpoint(get_run), methods=["GET"]),
]


def _param(name: str, where: str, schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": text,
    }


def _paging(limits: tuple[int, int]) -> list[dict[str, Any]]:
    default, maximum = limits
    return [
        _param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
            "page size",
        ),
        _param(
            "offset",
            "query",
            {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
            "items to skip",
        ),
    ]


_ERROR = {
    "description": "an error in the OpenAI error shape",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {
                            "message": {"type": "string"},
                            "type": {"type": "string"},
                            "param": {"type": ["string", "null"]},
                            "code": {"type": ["string", "null"]},
                        },
                    }
                },
            }
        }
    },
}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_RUN = {
    "type": "object",
    "properties": {
        "object": {"const": "eval_run"},
        "id": {"type": "string"},
        "dataset": {"type": "string"},
        "deployments": {"type": "array", "items": {"type": "string"}},
        "options": {"type": "object"},
        "status": {"enum": ["running", "done", "interrupted"]},
        "project": _NULLABLE_TEXT,
        "key_id": _NULLABLE_TEXT,
        "created_at": {"type": "string", "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "results": {"type": "integer", "description": "number of per-case results stored"},
        "best": _NULLABLE_TEXT,
        "recommendation": _NULLABLE_TEXT,
    },
}
_RESULT = {
    "type": "object",
    "properties": {
        "case_id": {"type": "string"},
        "deployment": {"type": "string"},
        "repeat": {"type": "integer"},
        "score": {"type": "number"},
        "passed": {"type": "boolean"},
        "reason": {"type": "string"},
        "output": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
        "latency_s": {"type": "number"},
        "input_tokens": {"type": "integer"},
        "output_tokens": {"type": "integer"},
        "cost_micros": {"type": ["integer", "null"], "description": "micro-dollars"},
        "error": _NULLABLE_TEXT,
        "attempts": {"type": "integer"},
    },
}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": item},
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "has_more": {"type": "boolean"},
        },
    }


def _ok(schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": schema}}}


_ERRORS = {"400": _ERROR, "401": _ERROR, "403": _ERROR, "503": _ERROR}
OPENAPI_PATHS: dict[str, Any] = {
    f"{PREFIX}/runs": {
        "get": {
            "summary": "List evaluation runs, newest first",
            "description": (
                "The operator sees every run; an owner its project's; a member its key's."
            ),
            "tags": ["evals"],
            "parameters": _paging(RUNS_LIMIT),
            "responses": {"200": _ok(_list_of(_RUN), "a page of runs"), **_ERRORS},
        }
    },
    f"{PREFIX}/runs/{{run_id}}": {
        "get": {
            "summary": "One evaluation run: its report and a page of its per-case results",
            "tags": ["evals"],
            "parameters": [
                _param("run_id", "path", {"type": "string"}, "the run id"),
                *_paging(RESULTS_LIMIT),
            ],
            "responses": {
                "200": _ok(
                    {
                        "allOf": [_RUN],
                        "properties": {
                            "report": {
                                "type": "object",
                                "description": "summaries, comparisons, best, recommendation",
                            },
                            "results": _list_of(_RESULT),
                        },
                    },
                    "the run",
                ),
                "404": _ERROR,
                **_ERRORS,
            },
        }
    },
}
