"""response_items: stored responses' items by owner and item id; conversation items by item id.

An ``item_reference`` input item names an item of an earlier stored response or conversation by
its id alone. ``response_items`` has one row per item of a stored response (its inputs and its
outputs) keyed by owner then item id, so the references of a request are found in one indexed
query; the item itself stays in the response's JSON. ``conversation_items.item_id`` gets an
index for the same lookup. The responses already stored are indexed here (their JSON is read
once); ids longer than 64 characters are not indexed (they cannot be referenced).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | None = None
depends_on: str | None = None

_BATCH = 500  # stored responses read per query while indexing them


def upgrade() -> None:
    items = op.create_table(
        "response_items",
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("response_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("owner", "item_id", "response_id", name=op.f("pk_response_items")),
    )
    op.create_index(op.f("ix_response_items_response_id"), "response_items", ["response_id"])
    op.create_index(op.f("ix_conversation_items_item_id"), "conversation_items", ["item_id"])
    _index_stored(items)


def _index_stored(items: sa.Table) -> None:
    """One row per item of every response already stored, read a batch at a time by id."""
    bind = op.get_bind()
    responses = sa.table(
        "responses",
        sa.column("id", sa.String),
        sa.column("owner", sa.String),
        sa.column("body", sa.Text),
        sa.column("input_items", sa.Text),
    )
    after = ""
    while True:
        query = (
            sa.select(responses.c.id, responses.c.owner, responses.c.body, responses.c.input_items)
            .where(responses.c.id > after)
            .order_by(responses.c.id)
            .limit(_BATCH)
        )
        rows = bind.execute(query).all()
        if not rows:
            return
        index: list[dict[str, Any]] = []
        for rid, owner, body, inputs in rows:
            found = [i.get("id") for i in json.loads(inputs) + json.loads(body).get("output", [])]
            index += [
                {"owner": owner, "item_id": item_id, "response_id": rid}
                for item_id in dict.fromkeys(found)
                if isinstance(item_id, str) and len(item_id) <= 64
            ]
        if index:
            bind.execute(sa.insert(items), index)
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_index(op.f("ix_conversation_items_item_id"), table_name="conversation_items")
    op.drop_index(op.f("ix_response_items_response_id"), table_name="response_items")
    op.drop_table("response_items")
