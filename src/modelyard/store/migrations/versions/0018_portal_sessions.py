"""portal_sessions: the portal's sessions in the store, shared by every worker and replica.

Keyed by the SHA-256 of the cookie's value (a reader of the table cannot use what it reads as
a cookie). Indexed by key id and subject (ending every session of a revoked key or person is
one DELETE) and by last use (pruning idle sessions).

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0016"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "portal_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("key_digest", sa.String(64), nullable=True),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("memberships", sa.Text(), nullable=False),
        sa.Column("project", sa.String(64), nullable=True),
        sa.Column("id_token", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in ("key_id", "subject", "last_seen"):
        op.create_index(f"ix_portal_sessions_{column}", "portal_sessions", [column])


def downgrade() -> None:
    op.drop_table("portal_sessions")
