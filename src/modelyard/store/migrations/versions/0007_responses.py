"""responses, conversations, conversation_items: the Responses and Conversations APIs' state.

A stored response keeps its ``Response`` object and its input items as JSON text (the store
does not read them), its owner (the project of the key that created it; '' for keys of no
project and keyless mode) and the response it continued. Conversation items are ordered by
their autoincrement ``seq``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous_id", sa.String(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("input_items", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responses")),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_table(
        "conversation_items",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("item", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_conversation_items")),
    )
    op.create_index(
        op.f("ix_conversation_items_conversation_id"),
        "conversation_items",
        ["conversation_id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_conversation_items_conversation_id"), table_name="conversation_items")
    op.drop_table("conversation_items")
    op.drop_table("conversations")
    op.drop_table("responses")
