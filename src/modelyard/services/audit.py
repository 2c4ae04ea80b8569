"""The audit log: every administrative change, who made it, when, from where, before and after.

Written once for the admin API, by ``server/admin_http.endpoint`` around every operation that
is not a GET (so a write route added later is audited without a line of its own), and by the
CLI's writes straight on the store. Values are the admin API's own views of the object (a key's
id, role, limits...), never a secret: a new key's secret and warning are dropped, and a digest
never reaches these views. Appending is the only operation (``store/audit.py``; the database
refuses the rest). Read by ``GET /admin/v1/audit`` and ``modelyard audit list|export``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import BaseModel, Field

from modelyard.services.admin_fields import Count, Since
from modelyard.services.admin_models import Query, Response, stamp
from modelyard.store import Store, database_url, open_store
from modelyard.store.audit import AuditLog
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.model import AuditEntry, AuditFilter

__all__ = ["AuditEntry", "AuditFilter", "actor_of", "entries", "read_log", "record", "snapshot"]

# Fields of the admin views that must never be kept (the secret is shown once, to its caller).
SECRET_FIELDS: Final = frozenset({"secret", "warning", "digest", "client_secret"})
MAX_ENTRIES = 10_000


def actor_of(principal: Principal) -> str:
    """``user:<subject>`` for a person signed in with single sign-on, else ``key:<id>``."""
    if principal.user is not None:
        return f"user:{principal.user}"
    return f"key:{principal.key_id or 'anonymous'}"


def snapshot(value: BaseModel | None) -> str | None:
    """An admin view as JSON, secrets left out; None stays None."""
    if value is None:
        return None
    shown = value.model_dump(mode="json")
    return orjson.dumps(_scrub(shown), option=orjson.OPT_SORT_KEYS).decode()


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in SECRET_FIELDS}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


async def record(store: Store, entry: AuditEntry) -> None:
    """Append ``entry``; a store error propagates (an unaudited change must not pass silently)."""
    async with store.transaction() as session:
        await AuditLog(session).append(entry)


async def entries(store: Store, where: AuditFilter, limit: int) -> list[AuditEntry]:
    async with store.transaction() as session:
        return await AuditLog(session).entries(where, limit)


async def read_log(
    configured: str | None, data: Path, where: AuditFilter, limit: int
) -> list[AuditEntry]:
    """Open the store the server uses (``database_url``), read the entries, close it (CLI)."""
    store = await open_store(database_url(configured, data))
    try:
        return await entries(store, where, limit)
    finally:
        await store.aclose()


class AuditQuery(Query):
    actor: str | None = Field(
        None, max_length=200, description="who: key:<id>, user:<subject> or cli:<name>"
    )
    kind: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9_.-]{0,63}$",
        description="a kind (key.create), or a prefix ending in a dot (key.)",
    )
    since: Since | None = None
    after: Count | None = Field(None, ge=0, description="paging: entries after this seq")
    limit: Count = Field(100, ge=1, le=MAX_ENTRIES, description="at most this many entries")

    def filter(self) -> AuditFilter:
        return AuditFilter(self.actor, self.kind, self.since, self.after)


class AuditShown(Response):
    object: str = "audit_entry"
    seq: int
    at: str | None
    actor: str
    client: str | None
    kind: str
    target: str | None
    before: Any = Field(description="the object before the change (null: none)")
    after: Any = Field(description="the object after the change (null: removed or none)")
    request_id: str | None

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditShown:
        return cls(
            seq=entry.seq, at=stamp(entry.at), actor=entry.actor, client=entry.client,
            kind=entry.kind, target=entry.target, before=_loads(entry.before),
            after=_loads(entry.after), request_id=entry.request_id,
        )  # fmt: skip


class AuditList(Response):
    object: str = "list"
    data: list[AuditShown]
    next_after: int | None = Field(description="pass as after= for the next page; null: done")


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def listing(found: list[AuditEntry], limit: int) -> AuditList:
    shown = [AuditShown.of(e) for e in found]
    return AuditList(data=shown, next_after=shown[-1].seq if len(shown) >= limit else None)


def json_lines(found: Iterable[AuditEntry]) -> Iterator[bytes]:
    """One JSON object per line, in the API's shape."""
    for entry in found:
        yield AuditShown.of(entry).model_dump_json().encode() + b"\n"


def entry_of(
    actor: str, kind: str, target: str | None, at: datetime, *, change: tuple[Any, Any]
) -> AuditEntry:
    """An entry for a change made outside HTTP (the CLI): no client address, no request id."""
    before, after = change
    return AuditEntry(at, actor, None, kind, target, _text(before), _text(after))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return snapshot(value)
    return orjson.dumps(_scrub(value), option=orjson.OPT_SORT_KEYS).decode()
