"""usage_records: add route, the routing decision of a request-reading strategy; and
router_artifacts, the trained learned routers by name and content version.

The ``learned`` (and ``semantic``) strategies choose a target from the request; the ledger
keeps what they chose and the score (``learned:balanced:weak:0.213``), so the split between
targets and its reasons can be grouped after the fact. Nullable: other strategies leave it
empty. Not indexed, like request_id (revision 0005): every insert would pay.

``router_artifacts`` keeps each trained router's bytes (an ``.npz`` of a few hundred KB) with
its provenance: the content version, the training data's digest, the two models, the seed and
the full JSON header (sources and all). Unique by (name, version).

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("route", sa.String(64), nullable=True))
    op.create_table(
        "router_artifacts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("data_sha256", sa.String(64), nullable=False),
        sa.Column("weak_model", sa.String(256), nullable=False),
        sa.Column("strong_model", sa.String(256), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("provenance", sa.Text(), nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_router_artifacts"),
        sa.UniqueConstraint("name", "version", name="uq_router_artifacts_name_version"),
    )
    op.create_index("ix_router_artifacts_name", "router_artifacts", ["name"])


def downgrade() -> None:
    op.drop_index("ix_router_artifacts_name", table_name="router_artifacts")
    op.drop_table("router_artifacts")
    # batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("route")
