"""usage_records: drop the request_id index.

No query filters the ledger by request id, and the index cost the writer more than every
other part of an insert: request ids are random, so each row lands on a random page of the
index. Time (``created_at``) and project stay indexed; they are what usage queries filter by.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # IF EXISTS: an operator who dropped it by hand (as this revision advises) is not stuck.
    op.drop_index("ix_usage_records_request_id", table_name="usage_records", if_exists=True)


def downgrade() -> None:
    op.create_index(
        "ix_usage_records_request_id", "usage_records", ["request_id"], if_not_exists=True
    )
