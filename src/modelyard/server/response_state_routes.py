"""Routes over stored state: retrieve, delete and list the input items of a response; the
Conversations API. Thin: read the ids and the query, call ``ResponseState``, encode."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.core.errors import ModelyardError, NotFound
from modelyard.protocols.openai.responses.decode import decode_metadata
from modelyard.protocols.openai.responses.encode import dump
from modelyard.protocols.openai.responses.items import canonical_items, reference_positions
from modelyard.protocols.openai.responses.request import JSON, new_id
from modelyard.protocols.validate import bad, get_list, require_dict
from modelyard.server.background_routes import retrieve
from modelyard.server.chat_route import authenticate, error_response, state_of
from modelyard.server.http import exchange_of, json_response, read_json
from modelyard.server.openai_routes import DIALECT
from modelyard.services.response_state import ResponseState, owner_of, page_of

MAX_ITEMS_PER_CALL = 20
_LIST_PARAMS = frozenset({"limit", "order", "after", "include"})
Handler = Callable[[Request, ResponseState, str], Awaitable[Any]]


def _route(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, run ``handler`` with the store and the caller's owner, encode its JSON."""

    async def endpoint(request: Request) -> Response:
        root = state_of(request)
        rid = exchange_of(request).rid
        try:
            owner = owner_of(await authenticate(root, request))
            body = await handler(request, ResponseState(root.store, root.response_writes), owner)
        except ModelyardError as err:
            return error_response(DIALECT, err, rid)
        return json_response(dump(body), headers={"x-request-id": rid})

    return endpoint


def _page_query(request: Request) -> tuple[str | None, int, str]:
    query = request.query_params
    unknown = sorted(set(query) - _LIST_PARAMS)
    if unknown:
        raise bad(unknown[0], "unknown query parameter; accepted: limit, order, after, include")
    raw = query.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise bad("limit", f"must be an integer from 1 to 100; got {raw!r}")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad("order", f"must be 'asc' or 'desc'; got {order!r}")
    return query.get("after"), int(raw), order


async def delete_response(request: Request, state: ResponseState, owner: str) -> JSON:
    response_id = request.path_params["response_id"]
    await state.delete(owner, response_id)
    return {"id": response_id, "object": "response", "deleted": True}


async def list_input_items(request: Request, state: ResponseState, owner: str) -> JSON:
    after, limit, order = _page_query(request)
    items = await state.input_items(owner, request.path_params["response_id"])
    return page_of(items, after, limit, order).body()


async def _items(body: JSON, required: bool, state: ResponseState, owner: str) -> list[JSON]:
    """A conversation's new items; an ``item_reference`` among them is the stored item."""
    raw = get_list(body, "items", "items", required=required) or []
    if len(raw) > MAX_ITEMS_PER_CALL:
        raise bad("items", f"at most {MAX_ITEMS_PER_CALL} items per call; got {len(raw)}")
    items = canonical_items(raw, "items")
    at = reference_positions(items, "items")
    if at:
        await state.resolve(owner, items, at, "items")
    return items


async def _body(request: Request, allowed: frozenset[str]) -> JSON:
    body = require_dict(await read_json(request, state_of(request).current.max_body_bytes), "body")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad(unknown[0], f"unknown parameter; accepted: {', '.join(sorted(allowed))}")
    return body


async def create_conversation(request: Request, state: ResponseState, owner: str) -> JSON:
    body = await _body(request, frozenset({"items", "metadata"}))
    items = await _items(body, False, state, owner)
    conv = {
        "id": new_id("conv"),
        "object": "conversation",
        "created_at": _now(),
        "metadata": decode_metadata(body.get("metadata")),
    }
    await state.create_conversation(owner, conv, items)
    return conv


async def get_conversation(request: Request, state: ResponseState, owner: str) -> JSON:
    return await state.conversation(owner, request.path_params["conversation_id"])


async def update_conversation(request: Request, state: ResponseState, owner: str) -> JSON:
    body = await _body(request, frozenset({"metadata"}))
    if "metadata" not in body:
        raise bad("metadata", "is required")
    metadata = decode_metadata(body["metadata"])
    return await state.update_conversation(owner, request.path_params["conversation_id"], metadata)


async def delete_conversation(request: Request, state: ResponseState, owner: str) -> JSON:
    conversation_id = request.path_params["conversation_id"]
    await state.delete_conversation(owner, conversation_id)
    return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}


async def list_items(request: Request, state: ResponseState, owner: str) -> JSON:
    after, limit, order = _page_query(request)
    items = await state.conversation_items(owner, request.path_params["conversation_id"])
    return page_of(items, after, limit, order).body()


async def add_items(request: Request, state: ResponseState, owner: str) -> JSON:
    items = await _items(await _body(request, frozenset({"items"})), True, state, owner)
    await state.append_items(owner, request.path_params["conversation_id"], items)
    return page_of(items, None, len(items) or 1, "asc").body()


async def get_item(request: Request, state: ResponseState, owner: str) -> JSON:
    item_id = request.path_params["item_id"]
    for item in await state.conversation_items(owner, request.path_params["conversation_id"]):
        if item["id"] == item_id:
            return item
    raise NotFound(f"no item {item_id!r} in this conversation", param="item_id")


async def delete_item(request: Request, state: ResponseState, owner: str) -> JSON:
    params = request.path_params
    return await state.delete_item(owner, params["conversation_id"], params["item_id"])


def _now() -> int:
    return int(time.time())


_R = "/v1/responses/{response_id}"
_C = "/v1/conversations/{conversation_id}"
ROUTES = (
    Route(_R, retrieve, methods=["GET"]),  # a background run live, else as stored
    Route(_R, _route(delete_response), methods=["DELETE"]),
    Route(_R + "/input_items", _route(list_input_items), methods=["GET"]),
    Route("/v1/conversations", _route(create_conversation), methods=["POST"]),
    Route(_C, _route(get_conversation), methods=["GET"]),
    Route(_C, _route(update_conversation), methods=["POST"]),
    Route(_C, _route(delete_conversation), methods=["DELETE"]),
    Route(_C + "/items", _route(list_items), methods=["GET"]),
    Route(_C + "/items", _route(add_items), methods=["POST"]),
    Route(_C + "/items/{item_id}", _route(get_item), methods=["GET"]),
    Route(_C + "/items/{item_id}", _route(delete_item), methods=["DELETE"]),
)
