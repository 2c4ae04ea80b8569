"""eval_results: add refused, whether the model declined the case.

A refusal (the model declined: the answer's ``refusal``) is recorded as the result's ``output``
with this mark, so a run's rows, its report and the portal tell a refusal from an empty or
wrong answer. NOT NULL with a server default of false: the results already
stored were graded as answers (a refusal then read as an empty one), and no result written by
an older gateway can know. No index (no query filters by it).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "eval_results",
        sa.Column("refused", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    # batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("eval_results") as batch:
        batch.drop_column("refused")
