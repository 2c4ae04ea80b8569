"""usage_records: add guardrails, the verdicts of the guardrails on a request.

``guard:phase:action:category:score`` items joined by ``, `` (never the content a guard found);
NULL when no guard found anything. Not indexed: a usage query filters by it only together with
the time and project bounds that are indexed.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("guardrails", sa.String(1024), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("guardrails")
