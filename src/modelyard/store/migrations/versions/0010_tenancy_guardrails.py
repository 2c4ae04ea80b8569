"""projects.guardrails, api_keys.guardrails: the guardrail policy attached by the admin API.

A policy's name in the config (or ``off``); null: none attached there, the config's attachments
decide. Not indexed: read only when the key ring is rebuilt.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("guardrails", sa.String(64), nullable=True))
    op.add_column("api_keys", sa.Column("guardrails", sa.String(64), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("guardrails")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("guardrails")
