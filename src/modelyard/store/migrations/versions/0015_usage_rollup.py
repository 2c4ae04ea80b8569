"""usage_rollup: the ledger's rollup per hour and per day (``store.usage_rollup``), filled
from the rows already in the ledger.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from types import MappingProxyType

import sqlalchemy as sa
from alembic import op

from modelyard.store.usage_rollup import (
    GROUP_COLUMNS,
    LATENCY_COLUMNS,
    SUM_COLUMNS,
    TABLE,
    backfill_sql,
)

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None

_LENGTHS = MappingProxyType(
    {
        "grain": 1,
        "period": 13,
        "project_id": 64,
        "key_id": 32,
        "deployment": 128,
        "model": 256,
    }
)


def upgrade() -> None:
    op.create_table(
        TABLE,
        *(sa.Column(c, sa.String(_LENGTHS[c]), nullable=False) for c in GROUP_COLUMNS),
        *(sa.Column(c, sa.BigInteger(), nullable=False) for c in SUM_COLUMNS + LATENCY_COLUMNS),
        sa.PrimaryKeyConstraint(*GROUP_COLUMNS, name=f"pk_{TABLE}"),
        sqlite_with_rowid=False,
    )
    op.execute(backfill_sql(op.get_bind().dialect.name))


def downgrade() -> None:
    op.drop_table(TABLE)
