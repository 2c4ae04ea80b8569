"""usage_records: add parent_id, the request a row was a step of.

A caller that runs several upstream steps for one request (an agent's model and tool steps)
meters each step as its own row, with its own request id, and links it to the parent request
through this column. Nullable: a plain request is its own parent. Not indexed, for the reason
revision 0005 gives for request_id: no usage query filters by it, and every insert would pay.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("parent_id", sa.String(128), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("parent_id")
