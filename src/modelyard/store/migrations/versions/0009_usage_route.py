"""usage_records: add route, the routing decision of a request-reading strategy.

The ``learned`` (and ``semantic``) strategies choose a target from the request; the ledger
keeps what they chose and the score (``learned:balanced:weak:0.213``), so the split between
targets and its reasons can be grouped after the fact. Nullable: other strategies leave it
empty. Not indexed, like request_id (revision 0005): every insert would pay.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("route", sa.String(64), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("route")
