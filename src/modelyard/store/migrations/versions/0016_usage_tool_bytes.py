"""usage_records: add bytes_in and bytes_out, the sizes of a tool step.

A tool the gateway runs (an MCP call, ledger endpoint ``mcp_call``) is one ledger row; these
hold the UTF-8 size of the arguments it was sent and of the result or error it returned, so an
operator can see which tools move data. BIGINT: no size a tool or a configuration produces
can overflow the column and fail a whole batch of the ledger. Nullable, and NULL on every model
call's row (a NULL takes no space beyond the row's null bitmap); no index
(no usage query filters by them, and every insert would pay); no backfill (the sizes of the
tool steps already recorded were never kept).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("bytes_in", sa.BigInteger(), nullable=True))
    op.add_column("usage_records", sa.Column("bytes_out", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("bytes_out")
        batch.drop_column("bytes_in")
