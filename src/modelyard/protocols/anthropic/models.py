"""The Models API in the Messages dialect (``GET /v1/models``, ``/v1/models/{id}``).

Served when the request carries ``anthropic-version`` (the Anthropic SDKs always send it); the
OpenAI shape is served otherwise. A model is ``{type: "model", id, display_name, created_at}``
(``created_at`` an RFC 3339 time); a list is one page of them, ``{data, has_more, first_id,
last_id}``, cut by the query's ``limit`` (1-1000, default 20) and ``after_id`` or ``before_id``
(ids of the previous page's ends; an id that is not listed is a 400 naming it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from modelyard.protocols.validate import bad

VERSION_HEADER = "anthropic-version"
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class ModelsPage:
    limit: int = DEFAULT_LIMIT
    after_id: str | None = None
    before_id: str | None = None


def page_of(query: Mapping[str, str]) -> ModelsPage:
    """The page a list request asks for; a bad ``limit`` is a 400 naming it."""
    raw = query.get("limit")
    limit = DEFAULT_LIMIT
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise bad("limit", f"must be an integer from 1 to {MAX_LIMIT}; got {raw!r}")
        limit = int(raw)
    return ModelsPage(limit, query.get("after_id") or None, query.get("before_id") or None)


def model_json(model_id: str, created: int) -> dict[str, Any]:
    created_at = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": model_id, "display_name": model_id, "created_at": created_at}


def list_json(models: Sequence[dict[str, Any]], page: ModelsPage) -> bytes:
    """One page of ``models`` (in listing order)."""
    ids = [m["id"] for m in models]
    start, end = 0, len(models)
    if page.after_id is not None:
        start = _index(ids, page.after_id, "after_id") + 1
        end = min(end, start + page.limit)
    elif page.before_id is not None:
        end = _index(ids, page.before_id, "before_id")
        start = max(0, end - page.limit)
    else:
        end = min(end, page.limit)
    data = list(models[start:end])
    more = end < len(models) if page.before_id is None else start > 0
    return orjson.dumps(
        {
            "data": data,
            "has_more": more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


def _index(ids: list[str], model_id: str, param: str) -> int:
    try:
        return ids.index(model_id)
    except ValueError:
        raise bad(param, f"{model_id!r} is not a listed model") from None
